"""Reading a window of source units as a Ray Dataset of raw samples, in parallel.

Ray Data's own readers do the IO, on whatever filesystem the source URI names:
``read_binary_files`` for WebDataset tars (each tar is unpacked by a task, so one broken
tar is one reject and the rest of the window is unaffected), ``read_parquet`` for Parquet
(files whose footer or schema cannot be read are found first, from the footer alone, and
become rejects naming the file), and for sources listed on the driver (img2dataset
``files``, COCO, Visual Genome, GQA) tasks that read each unit's images. Every row
carries its ``unit`` so the build can write and resume unit by unit.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from components.data.ingest.base import RawSample, SourceSpec, Unit
from components.data.ingest.sources import read_unit
from components.data.ingest.sources.parquet import Columns, inspect_file, table_samples
from components.data.ingest.sources.webdataset import tar_samples
from components.parsing.scene_graph import SCENE_GRAPH_TYPE
from components.platform.storage import filesystem_and_path

RAW_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("caption", pa.binary()),
        ("image", pa.binary()),
        ("error", pa.string()),
        ("detail", pa.string()),
        ("group", pa.string()),
        ("graph", SCENE_GRAPH_TYPE),
        ("unit", pa.int32()),
    ]
)


def raw_table(samples: list[tuple[int, RawSample]]) -> pa.Table:
    """(unit, sample) pairs as RAW_SCHEMA rows (captions as bytes, checked later)."""
    rows = []
    for unit, s in samples:
        caption = (
            s.caption.encode("utf-8", "surrogatepass") if isinstance(s.caption, str) else s.caption
        )
        rows.append(
            {"id": s.id, "caption": caption if isinstance(caption, bytes) else None,
             "image": s.image, "error": s.error, "detail": s.detail,
             "group": s.group or s.id, "graph": s.graph, "unit": unit}
        )  # fmt: skip
    return pa.Table.from_pylist(rows, schema=RAW_SCHEMA)


def _tar_rows(batch: pa.Table, units: dict[str, tuple[int, str]]) -> pa.Table:
    samples = []
    for data, path in zip(
        batch.column("bytes").to_pylist(), batch.column("path").to_pylist(), strict=True
    ):
        unit, uri = units[path]
        samples += [(unit, s) for s in tar_samples(data, uri)]
    return raw_table(samples)


def _parquet_rows(
    batch: pa.Table, spec: SourceSpec, columns: Columns, units: dict[str, tuple[int, str]]
) -> pa.Table:
    samples = []
    for path in sorted(set(batch.column("path").to_pylist())):
        rows = batch.filter(pc.equal(batch.column("path"), path))
        unit, uri = units[path]
        samples += [(unit, s) for s in table_samples(rows, spec, columns, uri)]
    return raw_table(samples)


def _unit_rows(batch: pa.Table, spec: SourceSpec, units: dict[int, Unit]) -> pa.Table:
    samples = []
    for index in batch.column("unit").to_pylist():
        samples += [(index, s) for s in read_unit(spec, units[index])]
    return raw_table(samples)


def read_window(spec: SourceSpec, units: list[Unit]) -> Any:
    """A Ray Dataset of RAW_SCHEMA rows for ``units`` (read by Ray tasks, not the driver);
    a unit that is a reject (not a regular file) is that row, and is never opened."""
    import ray.data

    rejects = [(u.index, u.reject) for u in units if u.reject is not None]
    readable = [u for u in units if u.reject is None]
    parts = [ray.data.from_arrow(raw_table(rejects))] if rejects else []
    if readable:
        parts.append(_read_units(spec, readable))
    return parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]


def _read_units(spec: SourceSpec, units: list[Unit]) -> Any:
    import ray.data

    fs, _ = filesystem_and_path(units[0].path)
    # Ray reports the path inside the filesystem; rows keep the unit index and its URI.
    inner = {filesystem_and_path(u.path)[1]: (u.index, u.path) for u in units}
    if spec.kind == "webdataset":
        ds = ray.data.read_binary_files(
            list(inner), filesystem=fs, include_paths=True, override_num_blocks=len(units)
        )
        return ds.map_batches(
            _tar_rows, fn_kwargs={"units": inner}, batch_size=1, batch_format="pyarrow"
        )
    if spec.kind == "parquet":
        return _read_parquet(spec, units, fs)
    ds = ray.data.from_items([{"unit": u.index} for u in units], override_num_blocks=len(units))
    by_index = {u.index: u for u in units}
    return ds.map_batches(
        _unit_rows,
        fn_kwargs={"spec": spec, "units": by_index},
        batch_size=1,
        batch_format="pyarrow",
    )


def _read_parquet(spec: SourceSpec, units: list[Unit], fs: Any) -> Any:
    import ray.data

    groups: dict[Columns, dict[str, tuple[int, str]]] = defaultdict(dict)
    rejects: list[tuple[int, RawSample]] = []
    for unit in units:
        columns, reject = inspect_file(spec, unit.path)
        if reject is not None:
            rejects.append((unit.index, reject))
        else:
            groups[columns][filesystem_and_path(unit.path)[1]] = (unit.index, unit.path)
    parts = [ray.data.from_arrow(raw_table(rejects))] if rejects else []
    for columns, paths in groups.items():
        ds = ray.data.read_parquet(list(paths), filesystem=fs, include_paths=True)
        ds = ds.select_columns([*columns.names(), "path"])  # pushed down into the read
        parts.append(
            ds.map_batches(
                _parquet_rows, fn_kwargs={"spec": spec, "columns": columns, "units": paths},
                batch_format="pyarrow",
            )
        )  # fmt: skip
    return parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]
