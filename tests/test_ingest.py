"""Ingest: every source format loads as it is; bad samples become counted rejects."""

from __future__ import annotations

import io
import json
import sys
import tarfile
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from components.data.ingest.base import RawSample, SourceSpec
from components.data.ingest.sources import iter_samples
from components.data.ingest.validate import IngestLimits, validate_sample

LIMITS = IngestLimits()
VG = Path(__file__).resolve().parents[2] / "shared" / "reference" / "benchmarks" / "visual_genome"


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


def write_tar(path: Path, files: list[tuple[str, bytes]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def make_webdataset(root: Path) -> Path:
    write_tar(root / "shard-000.tar", [
        ("s0.jpg", image_bytes("red")), ("s0.txt", b"a red square"),
        ("s1.png", image_bytes("green", "PNG")), ("s1.json", json.dumps({"caption": "a green square"}).encode()),
        ("s2.jpg", truncated_jpeg()), ("s2.txt", b"a blue square"),
    ])  # fmt: skip
    write_tar(root / "shard-001.tar", [
        ("s3.jpg", image_bytes("white")), ("s3.txt", b"   "),
        ("s4.jpg", image_bytes("black")), ("s4.txt", b"a black square"),
        ("s5.txt", b"a caption without its image"),
    ])  # fmt: skip
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
    assert all(s.id.startswith("paths-") for s in samples) and len({s.id for s in samples}) == 2
    good, reasons = outcomes(spec)
    assert len(good) == 1
    assert reasons == {"missing_file": 1}


def test_hf_datasets_parquet_image_struct_loads(tmp_path):
    """HF ``datasets`` stores Image features as struct<bytes, path>: bytes win, else path."""
    (tmp_path / "pic.png").write_bytes(image_bytes("blue", "PNG"))
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    table = pa.table(
        {
            "image": pa.array(
                [
                    {"bytes": image_bytes("red"), "path": "ignored.jpg"},
                    {"bytes": None, "path": "pic.png"},
                ],
                type=image_type,
            ),
            "text": ["a red square", "a blue square"],
        }
    )
    pq.write_table(table, tmp_path / "train-00000-of-00001.parquet")
    good, reasons = outcomes(SourceSpec("parquet", str(tmp_path), caption_column="text"))
    assert len(good) == 2 and not reasons


def test_img2dataset_parquet_jpg_and_key_columns(tmp_path):
    table = pa.table(
        {"caption": ["a red square", "a lost one"], "url": ["u0", "u1"], "key": ["000000000", "000000001"],
         "status": ["success", "failed_to_download"], "jpg": [image_bytes(), None]}
    )  # fmt: skip
    pq.write_table(table, tmp_path / "00000.parquet")
    good, reasons = outcomes(SourceSpec("parquet", str(tmp_path)))
    assert good == ["000000000"]
    assert reasons == {"missing_image": 1}


def test_img2dataset_files_format(tmp_path):
    shard = tmp_path / "00000"
    shard.mkdir()
    (shard / "000000000.jpg").write_bytes(image_bytes())
    (shard / "000000000.txt").write_text("a red square")
    (shard / "000000000.json").write_text(
        json.dumps({"caption": "a red square", "key": "000000000"})
    )
    (shard / "000000001.jpg").write_bytes(image_bytes("green"))
    (shard / "000000001.json").write_text(json.dumps({"caption": "a green square"}))
    (tmp_path / "00000_stats.json").write_text(json.dumps({"count": 2}))
    good, reasons = outcomes(SourceSpec("files", str(tmp_path)))
    assert good == ["00000/000000000", "00000/000000001"]
    assert not reasons


def test_webdataset_tars_group_by_key_and_reject_bad_samples(tmp_path):
    good, reasons = outcomes(SourceSpec("webdataset", str(make_webdataset(tmp_path / "wds"))))
    assert good == ["shard-000/s0", "shard-000/s1", "shard-001/s4"]
    assert reasons == {"corrupt_image": 1, "empty_caption": 1, "missing_image": 1}


def test_webdataset_brace_and_glob_patterns(tmp_path):
    root = make_webdataset(tmp_path / "wds")
    one = outcomes(SourceSpec("webdataset", str(root / "shard-{000..000}.tar")))[0]
    both = outcomes(SourceSpec("webdataset", f"file://{root}/shard-*.tar"))[0]
    assert one == ["shard-000/s0", "shard-000/s1"]
    assert both == ["shard-000/s0", "shard-000/s1", "shard-001/s4"]


def test_coco_gives_one_row_per_caption_and_rejects_missing_and_truncated(tmp_path):
    spec = SourceSpec("coco", str(make_coco(tmp_path)), image_root=str(tmp_path / "images"))
    good, reasons = outcomes(spec)
    assert good == ["coco-10", "coco-11"]
    assert reasons == {"empty_caption": 1, "corrupt_image": 1, "missing_file": 1}
    groups = {s.id: s.group for s in iter_samples(spec)}
    assert groups["coco-10"] == groups["coco-11"] == "coco-image-1"  # one split per image


@pytest.mark.skipif(not VG.is_dir(), reason="needs ../shared/reference (real VG files)")
def test_visual_genome_real_files_give_gold_graphs(tmp_path):
    """scene_graphs.json uses ``names`` lists; relationships.json inline subjects with ``name``."""
    for source in ("scene_graphs.first10.json", "relationships.element_image2.json"):
        spec = SourceSpec("visual_genome", str(VG / source), image_root=str(tmp_path))
        samples = list(iter_samples(spec))
        assert samples and all(s.graph and s.graph["objects"] for s in samples)
        assert all(s.error == "missing_file" for s in samples)  # images are not shipped
    two = {
        s.id: s
        for s in iter_samples(
            SourceSpec("visual_genome", str(VG / "relationships.element_image2.json"))
        )
    }
    graph = two["vg-2"].graph
    first = graph["relations"][0]
    assert graph["objects"][first["subject"]]["name"] == "man"
    assert (first["predicate"], graph["objects"][first["object"]]["name"]) == ("wears", "backpack")
    assert b"man wears" in two["vg-2"].caption


def test_gqa_scene_graphs(tmp_path):
    (tmp_path / "2405722.jpg").write_bytes(image_bytes())
    graphs = {
        "2405722": {"width": 500, "height": 333, "objects": {
            "1": {"name": "cat", "x": 1, "y": 2, "w": 3, "h": 4, "attributes": ["black"],
                  "relations": [{"name": "on", "object": "2"}]},
            "2": {"name": "table", "x": 1, "y": 2, "w": 3, "h": 4, "attributes": ["wooden"], "relations": []},
        }},
        "999": {"width": 1, "height": 1, "objects": {}},
    }  # fmt: skip
    (tmp_path / "val_sceneGraphs.json").write_text(json.dumps(graphs))
    samples = {
        s.id: s for s in iter_samples(SourceSpec("gqa", str(tmp_path / "val_sceneGraphs.json")))
    }
    assert samples["gqa-2405722"].caption == b"black cat on wooden table"
    assert samples["gqa-2405722"].error is None
    assert samples["gqa-999"].error == "no_objects"


def test_limits_reject_small_images_and_long_captions():
    limits = IngestLimits(min_image_side=16, max_caption_chars=10)
    tiny = RawSample("t", "a dot", image_bytes(size=4))
    wordy = RawSample("w", "a very long caption", image_bytes())
    assert validate_sample(tiny, limits)[0] == "image_too_small"
    assert validate_sample(wordy, limits)[0] == "caption_too_long"


def test_unknown_source_kind_is_named(tmp_path):
    with pytest.raises(ValueError, match="'laion'"):
        list(iter_samples(SourceSpec("laion", str(tmp_path))))


def test_split_assignment_is_deterministic_and_stable_when_rows_are_added():
    from components.data.ingest.build import SplitFractions, split_of

    fractions = SplitFractions(0.8, 0.1, 0.1)
    first = {f"id-{i}": split_of(f"id-{i}", fractions) for i in range(2000)}
    again = {f"id-{i}": split_of(f"id-{i}", fractions) for i in range(4000)}
    assert all(again[k] == v for k, v in first.items())
    shares = Counter(again.values())
    assert 0.75 < shares["train"] / 4000 < 0.85 and shares["val"] > 300 and shares["test"] > 300


@pytest.mark.slow
def test_build_writes_splits_card_rejects_and_resumes(ray_cluster, tmp_path):
    pytest.importorskip("spacy")
    from components.data.ingest.build import build_from_source
    from components.data.shards import read_shards
    from components.parsing.stage import ParseStageConfig

    source = SourceSpec("webdataset", str(make_webdataset(tmp_path / "wds")))
    parse = ParseStageConfig(concurrency=1, batch_size=8, num_cpus=0.5)
    out = tmp_path / "out"
    summary = build_from_source(source, out, parse, rows_per_shard=4)
    assert sum(summary["rows"].values()) == 3
    assert summary["rejects"] == {"corrupt_image": 1, "empty_caption": 1, "missing_image": 1}
    ids = []
    for split in ("train", "val", "test"):
        if (out / split).is_dir():
            table = read_shards(out / split)
            assert set(table.column("split").to_pylist()) == {split}
            assert all(g["objects"] for g in table.column("graph").to_pylist())
            ids += table.column("id").to_pylist()
    assert sorted(ids) == ["shard-000/s0", "shard-000/s1", "shard-001/s4"]
    card = json.loads((out / "card.json").read_text())
    assert card["parser"] == "spacy" and card["samples_read"] == 6
    assert sum(card["splits"].values()) == 3 and card["rejects"] == summary["rejects"]
    rejects = [
        json.loads(line) for line in (out / "rejects" / "part-00000.jsonl").read_text().splitlines()
    ]
    assert [(r["id"], r["reason"]) for r in rejects] == [("shard-000/s2", "corrupt_image")]

    again = build_from_source(source, out, parse, rows_per_shard=4)
    assert (again["units_written"], again["units_skipped"]) == (0, 2)
    assert (again["rows"], again["rejects"]) == (summary["rows"], summary["rejects"])


def test_sources_read_from_s3_with_braces_and_globs(s3_server, tmp_path):
    """A real S3 API (moto over HTTP): tars by brace pattern, Parquet by glob, COCO images."""
    import pyarrow.fs as pafs

    from components.platform.storage import expand_paths, filesystem_and_path

    bucket = s3_server.bucket("ingest")
    local = make_webdataset(tmp_path / "wds")
    coco_json = make_coco(tmp_path / "coco")
    fs, _ = filesystem_and_path(f"s3://{bucket}")
    for path in [*local.iterdir(), coco_json, *(coco_json.parent / "images").iterdir()]:
        key = f"{bucket}/{path.relative_to(tmp_path)}"
        with fs.open_output_stream(key) as stream:
            stream.write(path.read_bytes())
    assert expand_paths(f"s3://{bucket}/wds/shard-{{000..001}}.tar") == [
        f"s3://{bucket}/wds/shard-000.tar",
        f"s3://{bucket}/wds/shard-001.tar",
    ]
    assert len(expand_paths(f"s3://{bucket}/coco/images/*.jpg")) == 2
    assert isinstance(fs, pafs.S3FileSystem)
    good, reasons = outcomes(SourceSpec("webdataset", f"s3://{bucket}/wds/shard-{{000..001}}.tar"))
    assert good == ["shard-000/s0", "shard-000/s1", "shard-001/s4"]
    spec = SourceSpec("coco", f"s3://{bucket}/coco/captions.json")  # images beside the JSON
    spec.image_root = f"s3://{bucket}/coco/images"
    good, reasons = outcomes(spec)
    assert good == ["coco-10", "coco-11"]
    assert reasons == {"empty_caption": 1, "corrupt_image": 1, "missing_file": 1}


def test_make_sample_writes_img2dataset_coco_and_sugarcrepe_formats(tmp_path, monkeypatch):
    """The walkthrough's sample: every format ingests cleanly and SugarCrepe's loader reads it."""
    import importlib.util

    from components.evaluation.loaders.suites import public_benchmarks

    path = Path(__file__).resolve().parents[1] / "datasets" / "make_sample.py"
    module_spec = importlib.util.spec_from_file_location("make_sample", path)
    make_sample = importlib.util.module_from_spec(module_spec)
    monkeypatch.setitem(sys.modules, "make_sample", make_sample)  # dataclasses look it up
    module_spec.loader.exec_module(make_sample)
    counts = make_sample.main([f"out={tmp_path}", "num_samples=12", "eval_samples=8"])
    names = sorted(p.name for p in (tmp_path / "webdataset").iterdir())
    assert names == ["00000.parquet", "00000.tar", "00000_stats.json"]
    assert (
        pq.read_table(tmp_path / "webdataset" / "00000.parquet").column("status").to_pylist()
        == ["success"] * 12
    )
    wds, wds_rejects = outcomes(SourceSpec("webdataset", str(tmp_path / "webdataset")))
    coco_good, coco_rejects = outcomes(
        SourceSpec(
            "coco",
            str(tmp_path / "coco" / "captions.json"),
            image_root=str(tmp_path / "coco" / "images"),
        )
    )
    assert len(wds) == len(coco_good) == 12 and not wds_rejects and not coco_rejects
    benchmarks = public_benchmarks([f"sugarcrepe:{tmp_path / 'sugarcrepe'}"])
    assert {b.name.split("/")[1]: len(b.items) for b in benchmarks} == {
        k: v for k, v in counts.items() if v
    }
    assert counts["replace_att"] == 8  # every two-object scene supports an attribute swap-in


@pytest.mark.slow
def test_ray_readers_give_what_the_in_process_readers_give(ray_cluster, tmp_path):
    """Every kind through Ray Data's readers: the same samples, ids and reject reasons."""
    from components.data.ingest.read import read_window
    from components.data.ingest.sources import list_units

    hf = tmp_path / "hf"
    hf.mkdir()
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    images = pa.array(
        [{"bytes": image_bytes(), "path": None}, {"bytes": None, "path": "gone.png"}], image_type
    )
    pq.write_table(
        pa.table({"image": images, "caption": ["a red square", "x"]}), hf / "train.parquet"
    )
    files = tmp_path / "files" / "00000"
    files.mkdir(parents=True)
    (files / "000000000.jpg").write_bytes(image_bytes())
    (files / "000000000.txt").write_text("a red square")
    gqa = tmp_path / "gqa"
    gqa.mkdir()
    (gqa / "1.jpg").write_bytes(image_bytes())
    objects = {"1": {"name": "cat", "attributes": ["black"], "relations": [{"name": "on", "object": "2"}]},
               "2": {"name": "mat", "attributes": [], "relations": []}}  # fmt: skip
    (gqa / "val_sceneGraphs.json").write_text(json.dumps({"1": {"objects": objects}}))
    specs = [
        SourceSpec("webdataset", str(make_webdataset(tmp_path / "wds"))),
        SourceSpec("parquet", str(hf)),
        SourceSpec("files", str(tmp_path / "files")),
        SourceSpec(
            "coco", str(make_coco(tmp_path / "coco")), image_root=str(tmp_path / "coco" / "images")
        ),
        SourceSpec("gqa", str(gqa / "val_sceneGraphs.json")),
    ]
    for spec in specs:
        expected = sorted((s.id, s.error) for s in iter_samples(spec))
        rows = read_window(spec, list_units(spec)).take_all()
        assert sorted((r["id"], r["error"]) for r in rows) == expected, spec.kind
    (gold,) = rows
    assert (
        gold["graph"]["relations"][0]["predicate"] == "on"
        and gold["caption"] == b"black cat on mat"
    )
