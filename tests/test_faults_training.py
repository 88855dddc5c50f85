"""Training and evaluation faults (issue 42): a diverging loss, a worker group the cluster
cannot place, a batch larger than the split, a resume target that is no checkpoint, a
suite with no scorable item, out= on S3, refused reruns and a shared world being built.

Each fault ends in one line naming the key (before Ray or an MLflow run where it can), or
in a per-suite "no scorable items" with every other number written.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pytest
import ray.data
import torch

from components.data.build import build_manifest, build_synthetic, claim_output
from components.data.shards import read_shards, write_shard
from components.data.synthetic import SceneRowBuilder, SyntheticSpec
from components.data.synthetic_inputs import SyntheticData, training_shards
from components.evaluation import evaluate
from components.evaluation.synthetic import synthetic_suites
from components.models.backbone import build_backbone
from components.models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from components.models.registry import create_model
from components.platform.config import ConfigError, InvalidValue, load_config
from components.platform.outputs import LOCK, OutputLockedError, OutputMismatchError
from components.platform.processes import process_start_ticks
from components.training.loop import NonFiniteLoss, TrainConfig
from components.training.model_runs import check_split_fits_batch
from components.training.state import TRAIN_STATE, check_resume_target, load_resume_state
from components.training.trainer import ScalingSettings, check_cluster_fits, fit

ROOT = Path(__file__).resolve().parents[1]
SPEC = SyntheticSpec("clevr_pairs", seed=2, coverage=0.7, image_size=32)
ONE_LAYER = {"image_size": 32, "vision_cfg": {"layers": 1}, "text_cfg": {"layers": 1}}
TINY_CLIP = {"name": "clip", "backbone": {"name": "tiny", **ONE_LAYER}}
# AdamW with this learning rate scales every weight by ~1e29 in one step: the next loss is NaN
DIVERGING = TrainConfig(
    steps=5, batch_size=4, warmup_steps=0, backbone_lr=1e30, head_lr=1e30, shuffle_buffer=0
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def train_rows(ray_cluster):
    table = SceneRowBuilder(SPEC, "train").table(list(range(8)))
    return ray.data.from_arrow(table.select(["image", "caption", "graph"]))


@pytest.fixture(scope="module")
def clip_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model("clip", build_backbone("tiny", **ONE_LAYER))
    return save_checkpoint(model, tmp_path_factory.mktemp("clip") / "checkpoint")


# 1. A non-finite loss stops the run at its step.


def test_a_diverging_loss_stops_the_run_naming_the_step_and_the_loss(train_rows, tmp_path):
    """Ray Train's local mode runs the real loop in this process: step 1 is finite, the
    update of step 1 blows the weights up, step 2's loss is NaN and nothing is reported."""
    with pytest.raises(NonFiniteLoss) as err:
        fit(TINY_CLIP, DIVERGING, train_rows, ScalingSettings(num_workers=0), tmp_path, "nan")
    message = str(err.value)
    assert message.startswith("training diverged at step 2: loss nan, gradient norm nan;")
    assert "train.backbone_lr" in message and "\n" not in message
    assert isinstance(err.value, ConfigError)  # the CLI prints it as one line, exit 2


@pytest.mark.slow
def test_a_diverging_loss_on_a_ray_worker_reaches_the_driver_as_the_same_one_line(
    train_rows, tmp_path
):
    with pytest.raises(NonFiniteLoss, match=r"^training diverged at step 2: loss nan") as err:
        fit(TINY_CLIP, DIVERGING, train_rows, ScalingSettings(num_workers=1), tmp_path, "nan")
    assert "\n" not in str(err.value)  # not Ray's multi-line worker report


# 2. A worker group the cluster cannot place.


def test_more_workers_than_the_cluster_holds_is_refused_naming_asked_and_available(
    ray_cluster, train_rows, tmp_path
):
    cpus = ray_cluster.cluster_resources()["CPU"]
    workers = int(cpus) + 2
    started = time.monotonic()
    with pytest.raises(InvalidValue) as err:
        fit(
            TINY_CLIP,
            TrainConfig(),
            train_rows,
            ScalingSettings(num_workers=workers),
            tmp_path,
            "x",
        )
    assert time.monotonic() - started < 10  # refused, not retried forever
    message = str(err.value)
    assert message.startswith(f"scaling.num_workers={workers} is not allowed")
    assert f"asks {workers} CPU, the cluster has {cpus:g} CPU" in message
    assert not (tmp_path / "x").exists()  # before Ray Train made its run folder
    check_cluster_fits(ScalingSettings(num_workers=int(cpus)))  # what fits passes
    with pytest.raises(InvalidValue, match=r"asks 1 GPU, the cluster has 0 GPU"):
        check_cluster_fits(ScalingSettings(num_workers=1, use_gpu=True))


@dataclass
class Job:
    scaling: ScalingSettings = field(default_factory=ScalingSettings)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("scaling.num_workers=100000", "scaling.num_workers"),
        ("scaling.num_workers=-1", "scaling.num_workers"),
        ("scaling.cpus_per_worker=-0.5", "scaling.cpus_per_worker"),
        ("scaling.max_failures=-2", "scaling.max_failures"),
        ("scaling.worker_resources={slot: -1}", "scaling.worker_resources.slot"),
    ],
)
def test_scaling_settings_out_of_range_are_refused_when_the_config_loads(override, key):
    with pytest.raises(InvalidValue) as err:
        load_config(Job, [override])
    assert str(err.value).startswith(f"{key}=")


# 3. A batch larger than the training split.


def test_a_batch_larger_than_a_synthetic_split_is_refused_from_the_config_alone(tmp_path):
    world = SyntheticData(num_scenes=160, root=str(tmp_path))
    with pytest.raises(ConfigError, match=r"split 'train': 1\d\d rows .*train\.batch_size=1000"):
        check_split_fits_batch("", world, "train", TrainConfig(batch_size=1000), ScalingSettings())
    assert list(tmp_path.iterdir()) == []  # nothing built to find out
    check_split_fits_batch("", world, "train", TrainConfig(batch_size=64), ScalingSettings())


def test_a_batch_larger_than_a_data_split_is_refused_from_its_card_or_parquet_footers(tmp_path):
    rows = SceneRowBuilder(SPEC, "train").table(list(range(6)))
    write_shard(rows, tmp_path / "train" / "part-00000.parquet")
    big, small = TrainConfig(batch_size=8), TrainConfig(batch_size=6)
    with pytest.raises(ConfigError, match=r"split 'train': 6 rows .*batch_size=8"):  # footers
        check_split_fits_batch(str(tmp_path), SyntheticData(), "train", big, ScalingSettings())
    check_split_fits_batch(str(tmp_path), SyntheticData(), "train", small, ScalingSettings())
    (tmp_path / "card.json").write_text(json.dumps({"splits": {"train": 4}}))
    with pytest.raises(ConfigError, match=r"split 'train': 4 rows"):  # the card when it has one
        check_split_fits_batch(str(tmp_path), SyntheticData(), "train", small, ScalingSettings())


# 4. A resume target that is no training checkpoint.


def test_a_missing_resume_path_is_refused_naming_resume_before_ray(tmp_path):
    missing = str(tmp_path / "missing")
    with pytest.raises(InvalidValue) as err:
        check_resume_target(missing)
    assert str(err.value) == f"resume={missing!r} is not allowed: an existing folder"
    with pytest.raises(InvalidValue, match=r"^resume="):  # fit checks it first, too
        fit(TINY_CLIP, TrainConfig(), None, ScalingSettings(), tmp_path, "r", resume=missing)
    check_resume_target("")  # fresh
    check_resume_target("auto")  # Ray's own run folder


def test_an_s3_export_without_training_state_is_refused_naming_the_uri(s3_server, clip_checkpoint):
    from components.platform.storage import copy_tree

    bucket = s3_server.bucket("resume")
    export = f"s3://{bucket}/run/export"
    copy_tree(clip_checkpoint, export)  # weights and config, no optimiser state
    with pytest.raises(InvalidValue) as err:
        check_resume_target(export)
    message = str(err.value)
    assert message.startswith(f"resume={export!r} is not allowed: a training checkpoint")
    assert message.endswith(f"missing {TRAIN_STATE}") and "\n" not in message


def test_an_unusable_training_state_is_named_by_its_resume_uri_not_a_temp_path(
    tmp_path, clip_checkpoint
):
    import shutil

    local = tmp_path / "ray-download-1234"  # where Ray puts a resume URI's copy
    shutil.copytree(clip_checkpoint, local)
    (local / TRAIN_STATE).write_bytes(b"not a torch file")
    model = load_checkpoint(clip_checkpoint)
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    source = "s3://bucket/run/export"
    with pytest.raises(CheckpointError) as err:
        load_resume_state(local, source, model, optimizer, scheduler)
    message = str(err.value)
    assert message.startswith(f"resume={source}: {source}/{TRAIN_STATE}: not a usable")
    assert str(local) not in message


# 5. A suite with no scorable item.


def degenerate_split(folder: Path, kind: str) -> Path:
    """A 6-scene test_heldout split whose ``kind`` negatives equal their captions."""
    table = SceneRowBuilder(SPEC, "test_heldout").table(list(range(6)))
    rows = table.to_pylist()
    for row in rows:
        for negative in row["negatives"]:
            if negative["kind"] == kind:
                negative["caption"] = negative["positive_caption"] or row["caption"]
    split = folder / "test_heldout"
    write_shard(pa.Table.from_pylist(rows, schema=table.schema), split / "part-00000.parquet")
    return split


def test_a_suite_with_no_scorable_item_is_reported_as_such_and_the_others_are_written(
    tmp_path, clip_checkpoint, mlflow_uri
):
    from pipelines.evaluate import main

    split = degenerate_split(tmp_path / "data", "swap_rel")
    out = tmp_path / "out"
    results = main(
        [
            f"models=[{clip_checkpoint}]",
            f"suites=[synthetic:{split}]",
            "synthetic_suites=[swap_att,swap_rel]",
            "batch_size=2",
            "device=cpu",
            "ray_threshold=100000",
            f"out={out}",
        ]
    )
    written = json.loads((out / "results.json").read_text())
    assert written == results
    suites = synthetic_suites(split, ["swap_att"])
    expected = evaluate(load_checkpoint(clip_checkpoint).eval(), suites["swap_att"], 2, False)
    assert written["clip"] == {
        "test_heldout/swap_att": expected.summary()["accuracy"],
        "test_heldout/swap_rel": None,
    }
    note = written["no_scorable_items"]["clip"]["test_heldout/swap_rel"]
    assert note.startswith("no scorable items (") and "degenerate" in note
    report = (out / "report.md").read_text()
    assert f"No scorable items: clip on test_heldout/swap_rel, {note}." in report
    table = (out / "results.md").read_text()
    assert "test_heldout/swap_att" in table and "swap_rel" not in table
    assert (out / "plots" / "test_heldout.png").is_file()


# 6. build_synthetic to an S3 out=.


def test_build_synthetic_writes_an_s3_out_and_never_a_local_s3_folder(
    ray_cluster, s3_server, mlflow_uri, tmp_path, monkeypatch
):
    from pipelines.build_synthetic import main

    monkeypatch.chdir(tmp_path)
    bucket = s3_server.bucket("world")
    out = f"s3://{bucket}/worlds/pairs"
    args = ["world=clevr_pairs", "num_scenes=20", "image_size=32", "rows_per_shard=10"]
    main([*args, f"out={out}"])
    keys = s3_server.keys(bucket, "worlds/pairs/")
    for name in (
        "manifest.json",
        "card.json",
        "results.json",
        "report.md",
        "train/part-00000.parquet",
    ):
        assert f"worlds/pairs/{name}" in keys, name
    card = json.loads(s3_server.read(bucket, "worlds/pairs/card.json"))
    assert sum(card["splits"].values()) == 20
    assert read_shards(f"{out}/train").num_rows == card["splits"]["train"]
    assert not any(p.name.startswith("s3") for p in tmp_path.iterdir())
    spec = SyntheticSpec("clevr_pairs", 0, 0.7, 32)
    resumed = build_synthetic(spec, 20, out, rows_per_shard=10)  # the URI resumes too
    assert resumed["build"]["rows_written"] == 0 and resumed["build"]["rows_skipped"] == 20


# 7. Refused reruns start no Ray and open no MLflow run.


def test_a_refused_build_rerun_starts_no_ray_and_opens_no_mlflow_run(tmp_path):
    out = tmp_path / "world"
    claim_output(SyntheticSpec("clevr_pairs", 0, 0.7, 32), 20, out, 10)  # a seed-0 build's
    db = tmp_path / "mlflow.db"
    done = subprocess.run(
        [
            sys.executable,
            "pipelines/build_synthetic.py",
            "world=clevr_pairs",
            "num_scenes=20",
            "image_size=32",
            "rows_per_shard=10",
            "seed=1",
            f"out={out}",
        ],
        cwd=ROOT,
        env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{db}"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: out={out} was made with other settings (seed: 0 -> 1): choose a new out= "
        "or pass overwrite=true to rebuild it"
    ]
    assert "Ray" not in done.stdout + done.stderr  # refused before any cluster starts
    assert not db.exists()  # no MLflow run opened, FAILED or otherwise
    assert json.loads((out / "manifest.json").read_text()) == json.loads(
        json.dumps(build_manifest(SyntheticSpec("clevr_pairs", 0, 0.7, 32), 20, 10))
    )


def test_a_refused_evaluate_run_opens_no_mlflow_run(tmp_path, clip_checkpoint, mlflow_uri):
    from pipelines.evaluate import main

    missing = tmp_path / "no_split"
    with pytest.raises(ConfigError, match=re.escape(f"suite 'synthetic:{missing}'")):
        main([f"models=[{clip_checkpoint}]", f"suites=[synthetic:{missing}]", f"out={tmp_path}/o"])
    assert not (tmp_path / "mlflow.db").exists()  # the run's store was never opened


def test_a_mismatched_build_is_refused_by_claim_output_before_any_shard(tmp_path):
    claim_output(SyntheticSpec("clevr_pairs", 0, 0.7, 32), 20, tmp_path, 10)
    with pytest.raises(OutputMismatchError, match=r"image_size: 32 -> 48"):
        claim_output(SyntheticSpec("clevr_pairs", 0, 0.7, 48), 20, tmp_path, 10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]


# 8. A shared world another run is building.


def test_a_world_being_built_by_another_run_is_named_as_the_world_cache(tmp_path):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        world = SyntheticData(num_scenes=20, image_size=32, root=str(tmp_path / "cache"))
        cache = world.path()
        cache.mkdir(parents=True)
        holder = {
            "pid": other.pid,
            "pid_start": process_start_ticks(other.pid),
            "host": socket.gethostname(),
            "started": time.time(),
        }
        (cache / LOCK).write_text(json.dumps(holder))
        with pytest.raises(OutputLockedError) as err:
            training_shards("", world)
        assert str(err.value) == (
            f"the world cache {cache} is being built by pid {other.pid} on "
            f"{socket.gethostname()}; wait for it to finish or set synthetic.root to another "
            "folder"
        )
    finally:
        other.kill()
        other.wait()
