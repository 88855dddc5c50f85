"""Parquet shard IO: zstd, row groups small enough to stream, and a validating reader.

Readers check the schema before anything downstream sees a row, so a shard from another
tool or an older version fails with its path and the offending column, not deep in a
training step.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from components.data.schema import RECORD_SCHEMA

ROW_GROUP_SIZE = 256  # rows; images are ~2-30 KB, so groups of a few MB stream well


class ShardError(ValueError):
    """A shard that cannot be read as bindkit records; names the file and column."""


def write_shard(table: pa.Table, path: str | Path) -> Path:
    """Write one shard atomically (tmp + rename), so an interrupted run leaves no half file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = table.select(RECORD_SCHEMA.names).cast(RECORD_SCHEMA)
    tmp = path.with_suffix(path.suffix + ".tmp")
    pq.write_table(table, tmp, compression="zstd", row_group_size=ROW_GROUP_SIZE)
    tmp.replace(path)
    return path


def validate_schema(schema: pa.Schema, source: str, columns: list[str] | None = None) -> None:
    """Raise ShardError naming ``source`` and the first column that does not match."""
    for name in columns or RECORD_SCHEMA.names:
        expected = RECORD_SCHEMA.field(name).type
        if name not in schema.names:
            raise ShardError(f"{source}: missing column {name!r} (expected {expected})")
        actual = schema.field(name).type
        if not actual.equals(expected):
            raise ShardError(f"{source}: column {name!r} has type {actual}, expected {expected}")


def shard_files(root: str | Path) -> list[Path]:
    """Sorted Parquet files under a split directory (or a single file)."""
    root = Path(root)
    if root.is_file():
        return [root]
    files = sorted(root.rglob("*.parquet"))
    if not files:
        raise ShardError(f"{root}: no .parquet shards found")
    return files


def read_shards(root: str | Path, columns: list[str] | None = None) -> pa.Table:
    """Read and validate every shard under ``root`` into one table."""
    tables = []
    for path in shard_files(root):
        try:
            schema = pq.read_schema(path)
        except (pa.ArrowInvalid, OSError) as err:
            raise ShardError(f"{path}: not a readable Parquet file ({err})") from err
        validate_schema(schema, str(path), columns)
        try:
            tables.append(pq.read_table(path, columns=columns))
        except (pa.ArrowInvalid, OSError) as err:
            raise ShardError(f"{path}: corrupt data ({err})") from err
    return pa.concat_tables(tables)
