"""Issue 22 item 3, ingest: each bad record is a counted reject and the good rows survive."""

from __future__ import annotations

import json
import struct
import time
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_ingest import image_bytes, make_webdataset, outcomes, write_tar

from components.data.ingest.base import RawSample, SourceSpec
from components.data.ingest.sources import iter_samples
from components.data.ingest.validate import IngestLimits, validate_sample

LIMITS = IngestLimits()


def coco(tmp_path: Path, annotations: list[dict], images: list[dict] | None = None) -> SourceSpec:
    (tmp_path / "1.jpg").write_bytes(image_bytes())
    images = images if images is not None else [{"id": 1, "file_name": "1.jpg"}]
    path = tmp_path / "captions.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations}))
    return SourceSpec("coco", str(path))


def test_lone_surrogate_in_coco_caption_is_a_reject(tmp_path):
    # json.dumps writes "\ud800" as an escape; json.loads gives back a lone surrogate.
    spec = coco(tmp_path, [
        {"id": 1, "image_id": 1, "caption": "a red square \ud800"},
        {"id": 2, "image_id": 1, "caption": "a red square"},
    ])  # fmt: skip
    good, reasons = outcomes(spec)
    assert good == ["coco-2"] and reasons == {"invalid_utf8": 1}


def test_coco_record_without_id_or_file_name_is_a_reject(tmp_path):
    spec = coco(
        tmp_path,
        [{"image_id": 1, "caption": "no id"}, {"id": 2, "caption": "no image id"},
         {"id": 3, "image_id": 7, "caption": "image without file_name"},
         {"id": 4, "image_id": 1, "caption": "a red square"}],
        images=[{"id": 1, "file_name": "1.jpg"}, {"id": 7}],
    )  # fmt: skip
    good, reasons = outcomes(spec)
    assert good == ["coco-4"] and reasons == {"missing_field": 3}
    details = [s.detail for s in iter_samples(spec) if s.error]
    assert any("no id" in d for d in details) and any("file_name of image 7" in d for d in details)


def write_parquets(tmp_path: Path) -> SourceSpec:
    for name, colour in (("a", "red"), ("c", "blue")):
        table = pa.table(
            {"id": [f"{name}0"], "image": [image_bytes(colour)], "caption": [f"a {colour} square"]}
        )
        pq.write_table(table, tmp_path / f"{name}.parquet")
    whole = (tmp_path / "a.parquet").read_bytes()
    (tmp_path / "b.parquet").write_bytes(whole[: len(whole) // 2])  # cut: no footer
    return SourceSpec("parquet", str(tmp_path))


def test_truncated_parquet_among_good_ones_is_named_counted_and_later_files_read(tmp_path):
    spec = write_parquets(tmp_path)
    good, reasons = outcomes(spec)
    assert good == ["a0", "c0"] and reasons == {"unreadable_parquet": 1}
    (reject,) = [s for s in iter_samples(spec) if s.error]
    assert "b.parquet" in reject.detail


def test_truncated_parquet_on_the_ray_reader(ray_cluster, tmp_path):
    from components.data.ingest.read import read_window
    from components.data.ingest.sources import list_units

    spec = write_parquets(tmp_path)
    rows = read_window(spec, list_units(spec)).take_all()
    assert sorted(r["id"] for r in rows if r["error"] is None) == ["a0", "c0"]
    (bad,) = [r for r in rows if r["error"]]
    assert bad["error"] == "unreadable_parquet" and "b.parquet" in bad["detail"]


def test_non_utf8_webdataset_caption_is_a_reject_not_replacement_characters(tmp_path):
    write_tar(tmp_path / "w" / "00000.tar", [
        ("0.jpg", image_bytes()), ("0.txt", "un carré rouge".encode("latin-1")),
        ("1.jpg", image_bytes()), ("1.txt", "un carré rouge".encode()),
    ])  # fmt: skip
    good, reasons = outcomes(SourceSpec("webdataset", str(tmp_path / "w")))
    assert good == ["00000/1"] and reasons == {"invalid_utf8": 1}
    sample = next(iter_samples(SourceSpec("webdataset", str(tmp_path / "w"))))
    assert "\ufffd" not in str(validate_sample(sample, LIMITS))


def test_binary_caption_column_is_decoded_strictly(tmp_path):
    table = pa.table(
        {"id": ["a", "b"], "image": [image_bytes(), image_bytes()],
         "caption": pa.array([b"a red square", b"\xff\xfe bad"], type=pa.binary())}
    )  # fmt: skip
    pq.write_table(table, tmp_path / "x.parquet")
    good, reasons = outcomes(SourceSpec("parquet", str(tmp_path)))
    assert good == ["a"] and reasons == {"invalid_utf8": 1}


@pytest.mark.parametrize(
    "caption",
    ["a red\x00 square", "a \x1b[31mred\x1b[0m square", "a red \u202esquare", "a red\x85square"],
)
def test_nul_ansi_rtl_control_characters_are_rejected(caption):
    reason, detail = validate_sample(RawSample("x", caption, image_bytes()), LIMITS)
    assert reason == "control_characters" and detail.startswith("U+")
    assert validate_sample(RawSample("y", "a red\tsquare\n", image_bytes()), LIMITS) == (None, None)


def test_duplicate_ids_are_rejected(tmp_path):
    from components.data.ingest.build import SplitFractions, _Progress, validate_batch
    from components.data.ingest.read import raw_table

    samples = [RawSample(i, "a red square", image_bytes()) for i in ("a", "b", "a")]
    rows = validate_batch(raw_table([(0, s) for s in samples]), LIMITS, SplitFractions(1, 0, 0))
    progress = _Progress(str(tmp_path))
    progress.write_unit(0, rows, rows_per_shard=10)
    later = validate_batch(
        raw_table([(1, RawSample("b", "again", image_bytes()))]), LIMITS, SplitFractions(1, 0, 0)
    )
    progress.write_unit(1, later, rows_per_shard=10)
    assert progress.rows["train"] == 2 and progress.reasons == {"duplicate_id": 2}
    kept = pq.read_table(tmp_path / "train" / "part-00000-000.parquet").column("id").to_pylist()
    assert kept == ["a", "b"]
    assert not (tmp_path / "train" / "part-00001-000.parquet").exists()


def test_default_image_root_does_not_leak_into_parquet_sources(tmp_path):
    from components.platform.config import load_config
    from pipelines.build_shards import DEFAULT_CONFIG, BuildShardsConfig

    (tmp_path / "x.png").write_bytes(image_bytes(fmt="PNG"))
    pq.write_table(
        pa.table({"image": ["x.png"], "caption": ["a red square"]}), tmp_path / "p.parquet"
    )
    config = load_config(
        BuildShardsConfig, ["source.kind=parquet", f"source.path={tmp_path}"], DEFAULT_CONFIG
    )
    assert config.source.image_root == ""
    good, reasons = outcomes(config.source)
    assert len(good) == 1 and not reasons


def test_absolute_path_and_path_outside_image_root_are_rejected(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    (root / "ok.png").write_bytes(image_bytes(fmt="PNG"))
    (tmp_path / "secret.png").write_bytes(image_bytes(fmt="PNG"))
    paths = ["ok.png", "/etc/passwd", "../secret.png", "sub/../../secret.png", "file:///etc/passwd"]
    table = pa.table(
        {"id": [str(i) for i in range(5)], "image": paths, "caption": ["a red square"] * 5}
    )
    pq.write_table(table, tmp_path / "p.parquet")
    spec = SourceSpec("parquet", str(tmp_path / "p.parquet"), image_root=str(root))
    good, reasons = outcomes(spec)
    assert good == ["0"] and reasons == {"path_outside_root": 4}


def test_tar_cut_at_a_512_byte_header_boundary_is_detected(tmp_path):
    root = make_webdataset(tmp_path / "wds")
    whole = (root / "shard-000.tar").read_bytes()
    # Cut just before the third sample's first header: every earlier member is whole.
    cut = whole.index(b"s2.jpg") // 512 * 512
    (root / "shard-000.tar").write_bytes(whole[:cut])
    samples = list(iter_samples(SourceSpec("webdataset", str(root / "shard-000.tar"))))
    assert [s.id for s in samples if s.error is None] == ["shard-000/s0", "shard-000/s1"]
    (truncated,) = [s for s in samples if s.error]
    assert truncated.error == "truncated_tar" and "shard-000.tar" in truncated.detail


def huge_png_header(side: int) -> bytes:
    """A valid PNG signature + IHDR claiming side x side, with a token IDAT: ~100 bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def test_13000_square_png_is_rejected_from_its_header_before_decoding():
    start = time.perf_counter()
    reason, detail = validate_sample(
        RawSample("big", "a huge image", huge_png_header(13000)), LIMITS
    )
    assert reason == "image_too_large" and "13000x13000" in detail
    assert time.perf_counter() - start < 0.5  # a full decode takes seconds and ~700 MB


@pytest.mark.slow
def test_build_shards_rerun_with_different_rows_per_shard_refuses_and_never_duplicates(
    ray_cluster, tmp_path
):
    pytest.importorskip("spacy")
    from components.data.ingest.build import build_from_source
    from components.data.shards import read_shards
    from components.parsing.stage import ParseStageConfig
    from components.platform.outputs import OutputMismatchError

    source = SourceSpec("webdataset", str(make_webdataset(tmp_path / "wds")))
    parse = ParseStageConfig(concurrency=1, batch_size=8, num_cpus=0.5)
    out = tmp_path / "out"
    build_from_source(source, out, parse, rows_per_shard=4)
    with pytest.raises(OutputMismatchError, match=r"rows_per_shard: 4 -> 2"):
        build_from_source(source, out, parse, rows_per_shard=2)
    ids = [i for split in ("train", "val", "test") if (out / split).is_dir()
           for i in read_shards(out / split).column("id").to_pylist()]  # fmt: skip
    assert len(ids) == len(set(ids)) == 3
    assert sum(json.loads((out / "card.json").read_text())["splits"].values()) == 3
