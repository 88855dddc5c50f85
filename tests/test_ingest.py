"""Ingest: Parquet, WebDataset and COCO sources; bad samples become counted rejects."""

from __future__ import annotations

import io
import json
import tarfile
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from components.data.ingest import IngestLimits, SourceSpec, iter_samples, validate_sample

LIMITS = IngestLimits()


def image_bytes(colour: str = "red", fmt: str = "JPEG", size: int = 32) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format=fmt)
    return buffer.getvalue()


def truncated_jpeg() -> bytes:
    return image_bytes("blue", size=64)[:300]  # header intact, scan data cut off


def outcomes(spec: SourceSpec) -> tuple[list[str], Counter]:
    """(ids of good samples, reject reasons) after validation."""
    good, reasons = [], Counter()
    for sample in iter_samples(spec):
        reason, _ = validate_sample(sample, LIMITS)
        if reason is None:
            good.append(sample.id)
        else:
            reasons[reason] += 1
    return good, reasons


def make_webdataset(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    members = {
        "shard-000.tar": [
            ("s0.jpg", image_bytes("red")), ("s0.txt", b"a red square"),
            ("s1.png", image_bytes("green", "PNG")), ("s1.json", json.dumps({"caption": "a green square"}).encode()),
            ("s2.jpg", truncated_jpeg()), ("s2.txt", b"a blue square"),
        ],
        "shard-001.tar": [
            ("s3.jpg", image_bytes("white")), ("s3.txt", b"   "),
            ("s4.jpg", image_bytes("black")), ("s4.txt", b"a black square"),
            ("s5.txt", b"a caption without its image"),
        ],
    }  # fmt: skip
    for tar_name, files in members.items():
        with tarfile.open(root / tar_name, "w") as tar:
            for name, data in files:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return root


def make_coco(root: Path) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "images" / "1.jpg").write_bytes(image_bytes("red"))
    (root / "images" / "2.jpg").write_bytes(truncated_jpeg())
    captions = {
        "images": [{"id": 1, "file_name": "1.jpg"}, {"id": 2, "file_name": "2.jpg"},
                   {"id": 3, "file_name": "3.jpg"}],
        "annotations": [
            {"id": 10, "image_id": 1, "caption": "A red square."},
            {"id": 11, "image_id": 1, "caption": "a square that is red"},
            {"id": 12, "image_id": 1, "caption": ""},
            {"id": 13, "image_id": 2, "caption": "a blue square"},
            {"id": 14, "image_id": 3, "caption": "a missing picture"},
        ],
    }  # fmt: skip
    path = root / "captions.json"
    path.write_text(json.dumps(captions))
    return path


def test_parquet_with_image_bytes(tmp_path):
    table = pa.table(
        {
            "id": ["a", "b", "c", "d"],
            "image": [
                image_bytes(),
                truncated_jpeg(),
                image_bytes("green", "PNG"),
                b"not an image",
            ],
            "caption": ["a red square", "a blue square", "", "a caption"],
        }
    )
    pq.write_table(table, tmp_path / "source.parquet")
    good, reasons = outcomes(SourceSpec("parquet", str(tmp_path / "source.parquet")))
    assert good == ["a"]
    assert reasons == {"corrupt_image": 2, "empty_caption": 1}


def test_parquet_with_image_paths_reports_missing_files(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "x.png").write_bytes(image_bytes("red", "PNG"))
    table = pa.table({"image": ["x.png", "gone.png"], "caption": ["a red square", "a lost square"]})
    pq.write_table(table, tmp_path / "paths.parquet")
    spec = SourceSpec("parquet", str(tmp_path / "paths.parquet"), image_root=str(tmp_path / "img"))
    samples = list(iter_samples(spec))
    assert [s.id for s in samples] == ["paths-00000000", "paths-00000001"]
    good, reasons = outcomes(spec)
    assert good == ["paths-00000000"]
    assert reasons == {"missing_file": 1}


def test_webdataset_tars_group_by_key_and_reject_bad_samples(tmp_path):
    good, reasons = outcomes(SourceSpec("webdataset", str(make_webdataset(tmp_path / "wds"))))
    assert good == ["shard-000/s0", "shard-000/s1", "shard-001/s4"]
    assert reasons == {"corrupt_image": 1, "empty_caption": 1, "missing_image": 1}


def test_coco_gives_one_row_per_caption_and_rejects_missing_and_truncated(tmp_path):
    spec = SourceSpec("coco", str(make_coco(tmp_path)), image_root=str(tmp_path / "images"))
    good, reasons = outcomes(spec)
    assert good == ["coco-10", "coco-11"]
    assert reasons == {"empty_caption": 1, "corrupt_image": 1, "missing_file": 1}


def test_limits_reject_small_images_and_long_captions():
    from components.data.ingest import RawSample

    limits = IngestLimits(min_image_side=16, max_caption_chars=10)
    tiny = RawSample("t", "a dot", image_bytes(size=4))
    wordy = RawSample("w", "a very long caption", image_bytes())
    assert validate_sample(tiny, limits)[0] == "image_too_small"
    assert validate_sample(wordy, limits)[0] == "caption_too_long"


def test_unknown_source_kind_is_named(tmp_path):
    with pytest.raises(ValueError, match="'laion'"):
        list(iter_samples(SourceSpec("laion", str(tmp_path))))


def test_build_writes_every_good_row_once_with_rejects_and_resumes(ray_cluster, tmp_path):
    pytest.importorskip("spacy")
    from components.data.ingest_build import build_from_source
    from components.data.shards import read_shards
    from components.parsing.stage import ParseStageConfig

    source = SourceSpec("webdataset", str(make_webdataset(tmp_path / "wds")))
    parse = ParseStageConfig(concurrency=1, batch_size=8, num_cpus=0.5)
    out = tmp_path / "out"
    summary = build_from_source(source, out, parse, rows_per_shard=4, num_blocks=2)
    assert summary["rows"] == 3
    assert summary["rejects"] == {"corrupt_image": 1, "empty_caption": 1, "missing_image": 1}
    assert sorted(p.name for p in (out / "shards").iterdir()) == [
        "part-00000.parquet",
        "part-00001.parquet",
    ]
    table = read_shards(out / "shards")
    assert sorted(table.column("id").to_pylist()) == [
        "shard-000/s0",
        "shard-000/s1",
        "shard-001/s4",
    ]
    assert all(g["objects"] for g in table.column("graph").to_pylist())
    rejects = [
        json.loads(line) for line in (out / "rejects" / "part-00000.jsonl").read_text().splitlines()
    ]
    assert [(r["id"], r["reason"]) for r in rejects] == [
        ("shard-000/s2", "corrupt_image"),
        ("shard-001/s3", "empty_caption"),  # shard 0 is the first 4 samples, across both tars
    ]

    again = build_from_source(source, out, parse, rows_per_shard=4, num_blocks=2)
    assert (again["shards_written"], again["shards_skipped"]) == (0, 2)
    assert (again["rows"], again["rejects"]) == (summary["rows"], summary["rejects"])
