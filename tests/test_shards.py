"""Shard schema round trip and clear errors for bad shards."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components.data.schema import RECORD_SCHEMA
from components.data.shards import ShardError, read_shards, write_shard
from components.data.synthetic import SceneRowBuilder, SyntheticSpec


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return SceneRowBuilder(SyntheticSpec("clevr", 1, 0.6, 32), "train").table(list(range(12)))


def test_schema_round_trip_preserves_every_row(tmp_path, table):
    write_shard(table, tmp_path / "train" / "part-00000.parquet")
    back = read_shards(tmp_path / "train")
    assert back.schema.equals(RECORD_SCHEMA)
    assert back.to_pylist() == table.to_pylist()
    assert not list(tmp_path.rglob("*.tmp"))


def test_corrupt_shard_error_names_the_file(tmp_path, table):
    write_shard(table, tmp_path / "part-00000.parquet")
    bad = tmp_path / "part-00001.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(ShardError, match="part-00001.parquet"):
        read_shards(tmp_path)


def test_wrong_column_type_error_names_file_and_column(tmp_path, table):
    broken = table.set_column(
        table.schema.get_field_index("caption"), "caption", pa.array(range(len(table)))
    )
    pq.write_table(broken, tmp_path / "part-00000.parquet")
    with pytest.raises(ShardError, match=r"part-00000.parquet: column 'caption' has type int64"):
        read_shards(tmp_path)


def test_missing_column_error_names_the_column(tmp_path, table):
    pq.write_table(table.drop_columns(["graph"]), tmp_path / "part-00000.parquet")
    with pytest.raises(ShardError, match="missing column 'graph'"):
        read_shards(tmp_path)


def test_shards_round_trip_through_s3(s3_server, table):
    """write_shard / shard_files / read_shards on an s3:// URI (moto over HTTP)."""
    from components.data.shards import shard_files

    bucket = s3_server.bucket("shards")
    for k in range(2):
        write_shard(table.slice(6 * k, 6), f"s3://{bucket}/data/train/part-0000{k}.parquet")
    assert shard_files(f"s3://{bucket}/data/train") == [
        f"s3://{bucket}/data/train/part-00000.parquet",
        f"s3://{bucket}/data/train/part-00001.parquet",
    ]
    assert read_shards(f"s3://{bucket}/data/train").to_pylist() == table.to_pylist()
    with pytest.raises(ShardError, match="no .parquet shards"):
        shard_files(f"s3://{bucket}/data/val")
