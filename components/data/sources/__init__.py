"""Readers for each source kind, split into work units that can be read independently.

A *unit* is what one Ray task reads and what a build resumes by: one tar, one Parquet
file, one image folder of img2dataset's ``files`` output, or a chunk of records of a
single JSON file (COCO, Visual Genome, GQA). ``list_units`` runs on the driver and only
lists (plus, for JSON sources, parses the annotation file, which holds no pixels);
``read_unit`` turns a unit into raw samples and runs wherever the caller runs it: in Ray
workers during a build (components.data.ingest_read), in-process for tests and baselines.
A unit that cannot be read at all (a truncated Parquet file) yields one reject naming
the file, and the next unit is read as usual.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from components.data.ingest import RawSample, SourceSpec
from components.data.storage import read_bytes, under_root

GOLD_GRAPH_KINDS = ("visual_genome", "gqa")


@dataclass(frozen=True)
class Unit:
    """One independently readable piece of a source; ``items`` for listed kinds."""

    index: int
    path: str
    items: tuple[dict[str, Any], ...] = ()


def _modules() -> dict[str, Any]:
    from components.data.sources import listed, parquet, scene_graphs, webdataset

    return {
        "webdataset": webdataset,
        "parquet": parquet,
        "files": listed,
        "coco": listed,
        "visual_genome": scene_graphs,
        "gqa": scene_graphs,
    }


def source_module(kind: str) -> Any:
    modules = _modules()
    if kind not in modules:
        raise ValueError(f"source.kind {kind!r} is not one of {sorted(modules)}")
    return modules[kind]


def list_units(spec: SourceSpec, rows_per_unit: int = 1000) -> list[Unit]:
    """Every unit of the source in a stable order (sorted files, records sorted by id)."""
    if not spec.path:
        raise ValueError("source.path is empty: give a file, folder, URI or pattern")
    return source_module(spec.kind).list_units(spec, rows_per_unit)


def read_unit(spec: SourceSpec, unit: Unit) -> Iterator[RawSample]:
    yield from source_module(spec.kind).read_unit(spec, unit)


def load_image(
    root: str,
    relative: str,
    sample_id: str,
    caption: object,
    group: str | None = None,
    graph: dict | None = None,
) -> RawSample:
    """A sample whose image is a file under ``root``; a path outside it is a reject."""
    try:
        path = under_root(root, relative)
    except ValueError as err:
        return RawSample(
            sample_id, caption, None, "path_outside_root", str(err)[:300], group, graph
        )
    try:
        return RawSample(sample_id, caption, read_bytes(path), group=group, graph=graph)
    except FileNotFoundError:
        return RawSample(sample_id, caption, None, "missing_file", path, group, graph)
    except OSError as err:
        reason = (
            "missing_file"
            if "not found" in str(err).lower() or "No such" in str(err)
            else "unreadable_file"
        )
        return RawSample(sample_id, caption, None, reason, f"{path}: {err}"[:300], group, graph)
