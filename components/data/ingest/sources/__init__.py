"""Readers for each source kind, split into work units that can be read independently.

A *unit* is what one Ray task reads and what a build resumes by: one tar, one Parquet
file, one image folder of img2dataset's ``files`` output, or a chunk of records of a
single JSON file (COCO, Visual Genome, GQA). ``list_units`` runs on the driver and only
lists (plus, for JSON sources, parses the annotation file, which holds no pixels);
``read_unit`` turns a unit into raw samples and runs wherever the caller runs it: in Ray
workers during a build (components.data.ingest.read), in-process for tests and baselines.
A unit that cannot be read at all (a truncated Parquet file) yields one reject naming
the file, and the next unit is read as usual.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

from components.data.ingest.base import RawSample, SourceSpec, Unit
from components.data.ingest.sources import listed, parquet, scene_graphs, webdataset

GOLD_GRAPH_KINDS = ("visual_genome", "gqa")
# kind -> the module whose list_units / read_unit read it
SOURCE_MODULES: dict[str, ModuleType] = {
    "webdataset": webdataset,
    "parquet": parquet,
    "files": listed,
    "coco": listed,
    "visual_genome": scene_graphs,
    "gqa": scene_graphs,
}


def source_module(kind: str) -> ModuleType:
    if kind not in SOURCE_MODULES:
        raise ValueError(f"source.kind {kind!r} is not one of {sorted(SOURCE_MODULES)}")
    return SOURCE_MODULES[kind]


def list_units(spec: SourceSpec, rows_per_unit: int = 1000) -> list[Unit]:
    """Every unit of the source in a stable order (sorted files, records sorted by id)."""
    if not spec.path:
        raise ValueError("source.path is empty: give a file, folder, URI or pattern")
    return source_module(spec.kind).list_units(spec, rows_per_unit)


def read_unit(spec: SourceSpec, unit: Unit) -> Iterator[RawSample]:
    yield from source_module(spec.kind).read_unit(spec, unit)


def iter_samples(spec: SourceSpec, rows_per_unit: int = 1000) -> Iterator[RawSample]:
    """Raw samples of a source read one unit after another in this process (no Ray).

    The same per-unit readers the Ray path runs in workers, so tests and the driver-side
    baseline of benchmarks/ingest.py see exactly what a build sees.
    """
    for unit in list_units(spec, rows_per_unit):
        yield from read_unit(spec, unit)
