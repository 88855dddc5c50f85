"""Data-side faults of issue 42: every bad image, path or file is a counted reject (or a
counted skip in evaluation) with its reason, the good rows survive, and a build whose
source or out= cannot work stops in one line before Ray starts.

Real files throughout: PNGs written by PIL, Parquet by pyarrow, tars by tarfile, FIFOs by
os.mkfifo, objects on the moto S3 server, builds on the session's local Ray.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from components.data.ingest.base import RawSample, SourceSpec
from components.data.ingest.build import SplitFractions, validate_batch
from components.data.ingest.read import raw_table
from components.data.ingest.sources import iter_samples, list_units, read_unit
from components.data.ingest.validate import IngestLimits, decode_rgb, validate_sample
from components.evaluation import Benchmark, BenchmarkItem, ImageRef, evaluate, get_benchmark
from components.evaluation.benchmark import ImageRefused
from components.platform.config import InvalidValue, load_config
from components.platform.outputs import OutputMismatchError
from tests.test_evaluation_loaders import NEGBENCH_HEADER, aro_record, write_csv, write_json
from tests.test_evaluation_metrics import COLOURS, LookupScorer
from tests.test_ingest import image_bytes, make_webdataset, outcomes, write_tar
from tests.test_ingest_faults import huge_png_header

ROOT = Path(__file__).resolve().parents[1]
LIMITS = IngestLimits()
GREY_16 = 30000  # of 65535: 8-bit 117 when scaled; PIL's plain convert clips it to 255


def png_16_bit(path: Path | None = None, value: int = GREY_16, size: int = 16) -> bytes:
    """A 16-bit grayscale PNG (PIL opens it as mode I;16)."""
    buffer = io.BytesIO()
    Image.fromarray(np.full((size, size), value, dtype=np.uint16)).save(buffer, format="PNG")
    if path is not None:
        path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def rgb_of(data: bytes) -> tuple[int, int, int]:
    """The first pixel as any shard reader decodes it (a plain PIL convert)."""
    return Image.open(io.BytesIO(data)).convert("RGB").getpixel((0, 0))


def one_item(item_id: str, image: ImageRef, texts=("a grey square", "a white square")):
    return BenchmarkItem(item_id, (image,), texts, (0,))


# -- 1. 16-bit images are scaled, not clipped --------------------------------------------
def test_a_16_bit_png_is_scaled_to_8_bits_not_clipped_in_the_ingested_row():
    data = png_16_bit()
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    assert rgb_of(data) == (255, 255, 255)  # the fault: PIL's own convert clips to white
    assert validate_sample(RawSample("wide", "a grey square", data), LIMITS) == (None, None)
    eight_bit = image_bytes("red", "PNG")
    raw = raw_table([(0, RawSample("wide", b"a grey square", data)),
                     (0, RawSample("plain", b"a red square", eight_bit))])  # fmt: skip
    rows = validate_batch(raw, LIMITS, SplitFractions()).to_pylist()
    assert [r["reject_reason"] for r in rows] == [None, None]
    assert rgb_of(rows[0]["image"]) == (117, 117, 117)  # round(30000 * 255 / 65535)
    assert rows[1]["image"] == eight_bit  # an 8-bit image is stored byte for byte


def test_a_16_bit_benchmark_image_is_scaled_and_a_float_one_is_a_counted_skip(tmp_path):
    png_16_bit(tmp_path / "grey16.png")
    Image.fromarray(np.full((8, 8), 0.5, dtype=np.float32)).save(tmp_path / "float.tiff")
    Image.new("RGB", (8, 8), COLOURS["grey"]).save(tmp_path / "grey.png")
    assert decode_rgb(tmp_path / "grey16.png").getpixel((0, 0)) == (117, 117, 117)
    assert ImageRef(tmp_path / "grey16.png").load().getpixel((0, 0)) == (117, 117, 117)
    benchmark = Benchmark(
        "modes",
        (
            one_item("16bit", ImageRef(tmp_path / "grey16.png")),
            one_item("float", ImageRef(tmp_path / "float.tiff")),
            one_item("8bit", ImageRef(tmp_path / "grey.png")),
        ),
    )
    scorer = LookupScorer({("grey", "a grey square"): 1.0, ("white", "a white square"): 1.0})
    result = evaluate(scorer, benchmark, batch_size=3, progress=False)
    assert [(r.item.item_id, r.text_correct) for r in result.items] == [
        ("16bit", True),  # clipped to white it would pick "a white square"
        ("8bit", True),
    ]
    [skip] = result.skipped
    assert (skip.item.item_id, skip.reason) == ("float", "unsupported_mode")
    assert "float.tiff" in skip.detail and "mode F" in skip.detail
    assert result.summary()["n_unsupported_mode"] == 1.0


# -- 2. paths are resolved and confined to their root ------------------------------------
def test_a_symlink_out_of_the_image_root_is_a_counted_ingest_reject(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    (root / "ok.png").write_bytes(image_bytes(fmt="PNG"))
    (tmp_path / "secret.png").write_bytes(image_bytes("blue", fmt="PNG"))
    (root / "escape.png").symlink_to(tmp_path / "secret.png")
    (root / "alias.png").symlink_to(root / "ok.png")  # a link that stays inside is fine
    (root / "sub").symlink_to(tmp_path)  # a linked folder leading out
    paths = ["ok.png", "escape.png", "alias.png", "sub/secret.png"]
    table = pa.table({"id": ["ok", "escape", "alias", "sub"], "image": paths,
                      "caption": ["a red square"] * 4})  # fmt: skip
    pq.write_table(table, tmp_path / "p.parquet")
    spec = SourceSpec("parquet", str(tmp_path / "p.parquet"), image_root=str(root))
    good, reasons = outcomes(spec)
    assert good == ["ok", "alias"] and reasons == {"path_outside_root": 2}
    escaped = {s.id: s for s in iter_samples(spec)}["escape"]
    assert escaped.image is None and str(tmp_path / "secret.png") in escaped.detail


def _bad_names_root(tmp_path: Path) -> tuple[Path, Path]:
    """An image folder holding one good image and a symlink out to a secret image."""
    images = tmp_path / "bench" / "images"
    images.mkdir(parents=True)
    Image.new("RGB", (8, 8), COLOURS["grey"]).save(images / "good.png")
    secret = tmp_path / "secret.png"
    Image.new("RGB", (8, 8), COLOURS["white"]).save(secret)
    (images / "link.png").symlink_to(secret)
    return tmp_path / "bench", secret


def _sugarcrepe(root: Path, secret: Path) -> str:
    names = ["good.png", str(secret), "../../secret.png", "link.png"]
    write_json(root / "swap_att.json", {str(k): {"filename": n, "caption": "a grey square",
               "negative_caption": "a white square"} for k, n in enumerate(names)})  # fmt: skip
    return "sugarcrepe/swap_att"


def _aro(root: Path, secret: Path) -> str:
    names = ["good.png", "link.png", "authors/dir/link.png", "../.."]
    write_json(root / "visual_genome_relation.json", [aro_record(n, "on") for n in names])
    return "aro/vg_relation"


def _negbench(root: Path, secret: Path) -> str:
    rows = [[n, "a grey square", "b", "c", "d", 0, "affirmation"]
            for n in ("/home/authors/good.png", "/home/authors/link.png", "../link.png")]  # fmt: skip
    write_csv(root / "synthetic_mcq_llama3.1_rephrased.csv", NEGBENCH_HEADER, rows)
    return "negbench/synthetic_mcq"


def _whatsup(root: Path, secret: Path) -> str:
    (root / "vg_images").symlink_to(root / "images")
    records = [["good", "a grey square left", "a white square right"],
               ["../../secret", "a cup left", "a cup right"],
               ["link", "a cup left", "a cup right"]]  # fmt: skip
    write_json(root / "vg_qa_one_obj.json", records)
    (root / "images" / "good.jpg").symlink_to(root / "images" / "good.png")
    (root / "images" / "link.jpg").symlink_to(secret)
    return "whatsup/gqa_spatial_one"


def _clevr_bind(root: Path, secret: Path) -> str:
    (root / "rel" / "images").mkdir(parents=True)
    (root / "rel" / "images" / "gen").symlink_to(root / "images")
    write_json(root / "rel" / "gen.json", {n: {"pos": ["cube left sphere"]}
               for n in ("good.png", "link.png", str(secret), "../../../secret.png")})  # fmt: skip
    return "clevr_bind/rel"


@pytest.mark.parametrize("write", [_sugarcrepe, _aro, _negbench, _whatsup, _clevr_bind])
def test_benchmark_paths_leaving_their_image_folder_are_counted_skips_never_scored(tmp_path, write):
    root, secret = _bad_names_root(tmp_path)
    name = write(root, secret)
    # sugarcrepe, aro and negbench read root/images; whatsup and clevr_bind read their own
    # default folders, which are symlinks to it (a linked image folder is fine).
    linked = name.split("/")[0] in ("whatsup", "clevr_bind")
    options = {} if linked else {"image_dir": root / "images"}
    benchmark = get_benchmark(name, root, **options)  # no "missing image" for refused paths
    refused = [item.images[0].refused for item in benchmark.items]
    assert refused[0] is None and all(refused[1:]), refused
    scorer = LookupScorer({})
    result = evaluate(scorer, benchmark, progress=False)
    assert len(result.items) == 1 and result.items[0].item.item_id == benchmark.items[0].item_id
    assert result.skip_counts() == {"path_outside_root": len(benchmark) - 1}
    # The secret (white) image never reached the scorer: only the good grey one did.
    assert scorer.calls == [(1, len(benchmark.items[0].texts))]


# -- 3. benchmark images are header-checked like ingest ----------------------------------
def test_a_13000_square_benchmark_png_is_refused_from_its_header_before_decoding(tmp_path):
    (tmp_path / "huge.png").write_bytes(huge_png_header(13000))
    Image.new("RGB", (8, 8), COLOURS["grey"]).save(tmp_path / "grey.png")
    start = time.perf_counter()
    with pytest.raises(ImageRefused, match=r"13000x13000") as refused:
        ImageRef(tmp_path / "huge.png").load()
    assert refused.value.reason == "image_too_large"  # a decode would say "cannot be decoded"
    assert time.perf_counter() - start < 0.5
    benchmark = Benchmark("huge", (one_item("huge", ImageRef(tmp_path / "huge.png")),
                                   one_item("grey", ImageRef(tmp_path / "grey.png"))))  # fmt: skip
    result = evaluate(LookupScorer({("grey", "a grey square"): 1.0}), benchmark, progress=False)
    assert [r.item.item_id for r in result.items] == ["grey"]
    assert result.skip_counts() == {"image_too_large": 1}
    assert result.summary()["accuracy"] == 1.0


# -- 4. FIFOs and other non-regular files are counted ------------------------------------
def _read_bounded(spec: SourceSpec, seconds: float = 20) -> list[RawSample]:
    """``iter_samples`` in a thread: opening a FIFO blocks forever, so a hang fails fast."""
    box: list = []
    thread = threading.Thread(target=lambda: box.append(list(iter_samples(spec))), daemon=True)
    thread.start()
    thread.join(seconds)
    assert box, f"reading {spec.path} did not finish in {seconds} s (a FIFO was opened?)"
    return box[0]


def test_a_fifo_in_a_source_folder_is_a_counted_reject_and_never_opened(tmp_path):
    root = make_webdataset(tmp_path / "wds")
    os.mkfifo(root / "shard-002.tar")
    (root / "shard-003.tar").symlink_to(tmp_path / "gone.tar")  # a dangling link
    samples = _read_bounded(SourceSpec("webdataset", str(root)))
    rejects = [(s.id, s.error) for s in samples if s.error == "not_a_regular_file"]
    assert rejects == [(str(root / "shard-002.tar"), "not_a_regular_file"),
                       (str(root / "shard-003.tar"), "not_a_regular_file")]  # fmt: skip
    good = [s.id for s in samples if s.error is None and validate_sample(s, LIMITS)[0] is None]
    assert good == ["shard-000/s0", "shard-000/s1", "shard-001/s4"]


def _build(source: SourceSpec, out: Path, **options) -> dict:
    from components.data.ingest.build import build_from_source
    from components.parsing.stage import ParseStageConfig

    parse = ParseStageConfig(parser="template", batch_size=8, num_cpus=0.5, reject_empty=False)
    return build_from_source(source, out, parse, rows_per_shard=50, **options)


def _rejects(out: Path) -> list[dict]:
    lines = []
    for part in sorted((out / "rejects").glob("part-*.jsonl")):
        lines += [json.loads(line) for line in part.read_text().splitlines()]
    return lines


def test_a_fifo_is_a_counted_reject_in_a_ray_build_too(ray_cluster, tmp_path):
    root = make_webdataset(tmp_path / "wds")
    os.mkfifo(root / "shard-002.tar")
    summary = _build(SourceSpec("webdataset", str(root)), tmp_path / "out")
    assert sum(summary["rows"].values()) == 3
    assert summary["rejects"] == {
        "corrupt_image": 1, "empty_caption": 1, "missing_image": 1, "not_a_regular_file": 1,
    }  # fmt: skip
    card = json.loads((tmp_path / "out" / "card.json").read_text())
    assert card["rejects"]["not_a_regular_file"] == 1 and card["samples_read"] == 7
    [fifo] = [r for r in _rejects(tmp_path / "out") if r["reason"] == "not_a_regular_file"]
    assert "shard-002.tar" in fifo["raw"]


# -- 5. objects deleted mid-ingest ---------------------------------------------------------
def test_a_tar_deleted_after_listing_is_a_reject_naming_it(tmp_path):
    root = make_webdataset(tmp_path / "wds")
    spec = SourceSpec("webdataset", str(root))
    units = list_units(spec)
    (root / "shard-001.tar").unlink()
    samples = [s for unit in units for s in read_unit(spec, unit)]
    [gone] = [s for s in samples if s.error == "missing_file"]
    assert gone.id == "shard-001/<tar>" and str(root / "shard-001.tar") in gone.detail
    assert [s.id for s in samples if s.error is None][:2] == ["shard-000/s0", "shard-000/s1"]


def _upload_tars(s3_server, tmp_path: Path, count: int) -> tuple[str, list[str]]:
    from components.platform.storage import write_bytes

    bucket = s3_server.bucket("vanish")
    uris = []
    for k in range(count):
        local = write_tar(tmp_path / f"t{k}.tar", [
            (f"s{k}.png", image_bytes("red", "PNG")), (f"s{k}.txt", b"a red square"),
        ])  # fmt: skip
        uris.append(f"s3://{bucket}/wds/shard-{k:03d}.tar")
        write_bytes(uris[-1], local.read_bytes())
    return bucket, uris


def test_an_s3_object_deleted_mid_ingest_is_a_counted_reject_and_the_card_is_written(
    ray_cluster, s3_server, tmp_path
):
    from components.platform.storage import filesystem_and_path

    bucket, uris = _upload_tars(s3_server, tmp_path, 6)
    out = tmp_path / "out"
    fs, victim = filesystem_and_path(uris[5])

    def delete_once_listed() -> None:
        # manifest.json is written after the units are listed and before the first window
        # (units 0-3) is read; unit 5 is read in the second window, seconds later.
        deadline = time.monotonic() + 60
        while not (out / "manifest.json").exists():
            if time.monotonic() > deadline:
                return
            time.sleep(0.005)
        fs.delete_file(victim)

    watcher = threading.Thread(target=delete_once_listed, daemon=True)
    watcher.start()
    summary = _build(SourceSpec("webdataset", f"s3://{bucket}/wds"), out, shards_per_window=4)
    watcher.join(5)
    assert summary["rejects"] == {"missing_file": 1}
    assert sum(summary["rows"].values()) == 5 and summary["units_written"] == 6
    [gone] = _rejects(out)
    assert gone["id"] == "shard-005/<tar>" and uris[5] in gone["raw"]
    card = json.loads((out / "card.json").read_text())
    assert card["rejects"] == {"missing_file": 1} and sum(card["splits"].values()) == 5
    # A rerun sees another source (5 objects): refused in one line, not a traceback.
    with pytest.raises(OutputMismatchError, match=r"source_fingerprint"):
        _build(SourceSpec("webdataset", f"s3://{bucket}/wds"), out, shards_per_window=4)


# -- 6. build_shards checks its parse stage and paths before Ray -------------------------
def _config(*argv: str):
    from pipelines.build_shards import DEFAULT_CONFIG, BuildShardsConfig

    return load_config(BuildShardsConfig, list(argv), DEFAULT_CONFIG)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("parse.parser=bogus", "parse.parser='bogus' is not allowed: one of template, spacy, llm"),
        ("parse.concurrency=0", "parse.concurrency=0 is not allowed: a positive integer"),
        ("parse.batch_size=0", "parse.batch_size=0 is not allowed: a positive integer"),
    ],
)
def test_a_bad_parse_stage_value_is_one_line_naming_the_key(tmp_path, override, message):
    with pytest.raises(InvalidValue) as refused:
        _config(f"source.path={tmp_path}", "source.kind=webdataset", override)
    assert str(refused.value) == message


def test_a_missing_bucket_for_source_path_or_out_is_one_line_naming_the_key(s3_server, tmp_path):
    bucket = s3_server.bucket("exists")
    with pytest.raises(InvalidValue, match=r"^source\.path='s3://no-such-bucket-42/wds'"):
        _config("source.kind=webdataset", "source.path=s3://no-such-bucket-42/wds")
    with pytest.raises(InvalidValue, match=r"the folder before its pattern: s3://no-such-b"):
        _config("source.kind=webdataset", "source.path=s3://no-such-bucket-42/{000..009}.tar")
    with pytest.raises(InvalidValue, match=r"^out='s3://no-such-bucket-42/out' .* as its bucket"):
        _config(f"source.path={tmp_path}", "out=s3://no-such-bucket-42/out")
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(InvalidValue, match=r"^out=.*file/out.* is not a writable folder"):
        _config(f"source.path={tmp_path}", f"out={tmp_path / 'file' / 'out'}")
    # A bucket that exists passes (its out= folder is created by the run).
    _config(f"source.path={tmp_path}", f"out=s3://{bucket}/out")


# -- 7. no source given -------------------------------------------------------------------
def _run_build_shards(cwd: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{cwd / 'mlflow.db'}"}
    return subprocess.run(
        [sys.executable, str(ROOT / "pipelines" / "build_shards.py"), *argv],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_build_shards_without_a_source_is_one_line_before_ray_or_mlflow(tmp_path):
    unset = _run_build_shards(tmp_path, "source.path=")
    assert unset.returncode == 2, unset.stderr
    assert unset.stderr.splitlines() == [
        "error: no source: set source.kind and source.path; see docs/own-data.md"
    ]
    default = _run_build_shards(tmp_path)  # the default config's COCO file is not here
    assert default.returncode == 2, default.stderr
    [line] = default.stderr.splitlines()
    assert line.startswith("error: source.path='datasets/coco/") and "docs/own-data.md" in line
    # Nothing was made: no MLflow store (so no run), no output folder, no Ray session dir.
    assert not (tmp_path / "mlflow.db").exists() and not list(tmp_path.iterdir())


def test_a_refused_build_shards_rerun_starts_no_ray_and_opens_no_mlflow_run(tmp_path):
    from components.data.ingest.build import claim_output
    from components.data.ingest.demo import write_demo_webdataset
    from components.parsing.stage import ParseStageConfig

    source = write_demo_webdataset(tmp_path / "source", 8)
    out = tmp_path / "shards"
    spec = SourceSpec(kind="webdataset", path=str(source))
    claim_output(spec, str(out), ParseStageConfig(), IngestLimits(), 10, SplitFractions(), [])
    db = tmp_path / "mlflow.db"
    done = subprocess.run(
        [
            sys.executable,
            "pipelines/build_shards.py",
            "source.kind=webdataset",
            f"source.path={source}",
            "rows_per_shard=20",
            f"out={out}",
        ],
        cwd=ROOT,
        env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{db}"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: out={out} was made with other settings")
    assert "rows_per_shard: 10 -> 20" in lines[0]
    assert "Ray" not in done.stdout + done.stderr  # refused before any cluster starts
    assert not db.exists()  # no MLflow run opened, FAILED or otherwise
