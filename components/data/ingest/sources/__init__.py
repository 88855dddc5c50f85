"""Readers for each source kind, split into work units that can be read independently.

A *unit* is what one Ray task reads and what a build resumes by: one tar, one Parquet
file, one image folder of img2dataset's ``files`` output, or a chunk of records of a
single JSON file (COCO, Visual Genome, GQA). ``list_units`` runs on the driver and only
lists (plus, for JSON sources, parses the annotation file, which holds no pixels);
``read_unit`` turns a unit into raw samples and runs wherever the caller runs it: in Ray
workers during a build (components.data.ingest.read), in-process for tests and baselines.
A unit that cannot be read at all (a truncated Parquet file, an object deleted since it
was listed) yields one reject naming the file, and the next unit is read as usual. An
entry of a source folder that is not a regular file (a FIFO, socket, device or dangling
link) is a unit of its own holding one ``not_a_regular_file`` reject: it is counted, and
never opened (opening a FIFO blocks until something writes to it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import ModuleType

from components.data.ingest.base import RawSample, SourceSpec, Unit
from components.data.ingest.sources import listed, parquet, scene_graphs, webdataset
from components.platform.storage import expand_braces, local_path

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


# Kinds whose units are the files of a folder, and the names a folder's files must end in
# to be read (the same filter ``expand_paths`` applies to regular files).
FOLDER_SUFFIXES: dict[str, tuple[str, ...]] = {
    "webdataset": webdataset.SUFFIXES,
    "parquet": parquet.SUFFIXES,
    "files": (),
}


def list_units(spec: SourceSpec, rows_per_unit: int = 1000) -> list[Unit]:
    """Every unit of the source in a stable order (sorted files, records sorted by id),
    then one reject unit per entry of a source folder that is not a regular file."""
    if not spec.path:
        raise ValueError("source.path is empty: give a file, folder, URI or pattern")
    units = source_module(spec.kind).list_units(spec, rows_per_unit)
    if spec.kind not in FOLDER_SUFFIXES:
        return units
    for path in non_regular_files(spec.path, FOLDER_SUFFIXES[spec.kind]):
        detail = f"{path}: not a regular file (FIFO, socket, device or dangling link); not read"
        reject = RawSample(path, None, None, "not_a_regular_file", detail)
        units.append(Unit(len(units), path, reject=reject))
    return units


def non_regular_files(path_spec: str, suffixes: tuple[str, ...] = ()) -> list[str]:
    """Entries under the local folders ``path_spec`` names that are neither files nor
    folders (links followed), sorted; pyarrow's listing leaves them out silently.

    Folders only (glob entries are not walked); object stores hold only objects.
    """
    found = []
    for entry in expand_braces(path_spec):
        folder = local_path(entry)
        if folder is None or not os.path.isdir(folder):
            continue
        for parent, _, names in os.walk(folder):
            for name in names:
                path = os.path.join(parent, name)
                if name.startswith((".", "_")) or (
                    suffixes and not name.lower().endswith(suffixes)
                ):
                    continue  # the names expand_paths would not list as files either
                if not os.path.isfile(path) and not os.path.isdir(path):
                    found.append(path)
    return sorted(found)


def read_unit(spec: SourceSpec, unit: Unit) -> Iterator[RawSample]:
    if unit.reject is not None:
        yield unit.reject
        return
    yield from source_module(spec.kind).read_unit(spec, unit)


def iter_samples(spec: SourceSpec, rows_per_unit: int = 1000) -> Iterator[RawSample]:
    """Raw samples of a source read one unit after another in this process (no Ray).

    The same per-unit readers the Ray path runs in workers, so tests and the driver-side
    baseline of benchmarks/ingest.py see exactly what a build sees.
    """
    for unit in list_units(spec, rows_per_unit):
        yield from read_unit(spec, unit)
