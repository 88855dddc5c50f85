"""The shared Ray Train loop: 2 workers, checkpoints, a worker killed mid-run, resume."""

from __future__ import annotations

import math

import mlflow
import pytest
import ray.data

from components.data.synthetic import SceneRowBuilder, SyntheticSpec
from components.training.loop import TrainConfig
from components.training.trainer import ScalingSettings, fit

SPEC = SyntheticSpec("clevr_pairs", seed=2, coverage=0.7, image_size=64)
MODEL = {"name": "occlip", "backbone": {"name": "tiny"}}


@pytest.fixture(scope="module")
def rows_dataset(ray_cluster):
    table = SceneRowBuilder(SPEC, "train").table(list(range(64)))
    return ray.data.from_arrow(table.select(["image", "caption", "graph"]))


@pytest.mark.slow
def test_two_workers_survive_a_killed_worker_and_finish_every_step(
    rows_dataset, tmp_path, mlflow_uri
):
    client = mlflow.tracking.MlflowClient(mlflow_uri)
    run = client.create_run(client.create_experiment("drill"))
    train = TrainConfig(
        steps=6,
        batch_size=8,
        warmup_steps=1,
        checkpoint_every=2,
        log_every=1,
        shuffle_buffer=0,
        drill_exit_step=3,
        drill_marker=str(tmp_path / "killed-once"),
    )
    result = fit(
        MODEL,
        train,
        rows_dataset,
        ScalingSettings(num_workers=2, max_failures=1),
        storage_path=tmp_path / "ray",
        run_name="drill",
        mlflow={"tracking_uri": mlflow_uri, "run_id": run.info.run_id},
    )
    assert (tmp_path / "killed-once").read_text() == "3"  # the worker really died at step 3
    assert result.metrics["step"] == 6
    assert result.metrics["start_step"] == 2  # resumed from the step-2 checkpoint
    assert math.isfinite(result.metrics["loss"])
    assert result.checkpoint.path.endswith("step-0000006")
    history = client.get_metric_history(run.info.run_id, "loss")
    assert sorted({m.step for m in history}) == [1, 2, 3, 4, 5, 6]


@pytest.mark.slow
def test_explicit_resume_path_continues_from_its_step(rows_dataset, tmp_path):
    first = fit(
        MODEL,
        TrainConfig(steps=2, batch_size=8, warmup_steps=1, checkpoint_every=2),
        rows_dataset,
        ScalingSettings(num_workers=1),
        tmp_path / "ray",
        "first",
    )
    with first.checkpoint.as_directory() as directory:
        second = fit(
            MODEL,
            TrainConfig(steps=4, batch_size=8, warmup_steps=1, checkpoint_every=2),
            rows_dataset,
            ScalingSettings(num_workers=1),
            tmp_path / "ray",
            "second",
            resume=directory,
        )
    assert second.metrics["start_step"] == 2 and second.metrics["step"] == 4


@pytest.mark.slow
def test_validation_keeps_the_best_checkpoint_and_accumulates_gradients(rows_dataset, tmp_path):
    from components.training.trainer import best_checkpoint

    result = fit(
        MODEL,
        TrainConfig(steps=4, batch_size=8, accum_steps=2, warmup_steps=1, val_every=2),
        rows_dataset,
        ScalingSettings(num_workers=1),
        tmp_path / "ray",
        "val",
        val_dataset=rows_dataset.limit(16),
    )
    scored = {c.path: m["val_loss"] for c, m in result.best_checkpoints}
    assert len(scored) == 2 and all(math.isfinite(v) for v in scored.values())  # steps 2 and 4
    assert best_checkpoint(result).path == min(scored, key=scored.get)
    assert "start_step" in result.metrics and result.metrics["step"] == 4


@pytest.mark.slow
def test_batch_larger_than_the_training_split_fails_before_training(rows_dataset, tmp_path):
    with pytest.raises(ValueError, match=r"split 'train': 64 rows over 1 worker"):
        fit(MODEL, TrainConfig(batch_size=1000), rows_dataset, ScalingSettings(), tmp_path, "big")
    assert not (tmp_path / "big").exists()  # refused before Ray Train made its run folder


@pytest.mark.slow
def test_same_smoke_config_and_seed_give_identical_heldout_numbers(
    ray_cluster, mlflow_uri, tmp_path
):
    from pipelines.train_occlip import main

    smoke = ["--config", "pipelines/configs/smoke/train_occlip.yaml"]
    first = main([*smoke, f"out={tmp_path / 'first'}"])
    second = main([*smoke, f"out={tmp_path / 'second'}"])
    assert first == second
    assert set(first["occlip"]) >= {"swap_att", "swap_rel"}  # numbers, not two empty tables
