"""The coverage sweep: threshold estimate, and a 2-trial Tune run tracked in MLflow and restorable."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from components.evaluation.coverage_sweep import coverage_threshold
from tune.sweep_coverage import main, parse_world

SMOKE = Path(__file__).parents[1] / "tune" / "configs" / "smoke" / "sweep_coverage.yaml"


def test_threshold_interpolates_the_midpoint_crossing():
    # chance 0.2 -> midpoint 0.6, crossed halfway between 0.3 (0.4) and 0.5 (0.8)
    assert coverage_threshold([0.1, 0.3, 0.5, 0.7], [0.2, 0.4, 0.8, 0.9], 0.2) == pytest.approx(0.4)


def test_threshold_is_none_when_never_crossed_and_first_point_when_always_above():
    assert coverage_threshold([0.1, 0.5], [0.1, 0.3], 0.0) is None
    assert coverage_threshold([0.5, 0.1], [0.9, 0.8], 0.0) == pytest.approx(0.1)


def test_world_names_parse_and_bad_names_are_rejected():
    world = parse_world("C3V5", 2)
    assert (world.num_concepts, world.num_values, world.num_objects) == (3, 5, 125)
    with pytest.raises(ValueError, match="C2V10"):
        parse_world("2x10", 2)


@pytest.mark.slow
def test_two_trial_sweep_writes_two_mlflow_runs_and_restores(ray_cluster, mlflow_uri, tmp_path):
    import mlflow

    argv = ["--config", str(SMOKE), f"out={tmp_path}", "train.steps=40", "train.eval_every=20"]
    results = main(argv)
    assert results["coverage"]["trials"] == {"finished": 2, "total": 2}
    mlflow.set_tracking_uri(mlflow_uri)
    everything = mlflow.search_runs(experiment_names=["sweep_coverage_smoke"])
    summary = everything[everything["tags.mlflow.runName"] == "sweep_coverage_smoke-summary"]
    runs = everything.drop(summary.index)  # the trials; the summary shares their experiment
    assert len(summary) == 1
    summary_files = {a.path for a in mlflow.MlflowClient().list_artifacts(summary["run_id"][0])}
    assert {"report.md", "report.html", "coverage.png"} <= summary_files
    assert "tune" not in summary_files  # trial checkpoints are not uploaded with the summary
    assert "metrics.config/coverage" not in runs  # trial config is params, not metrics
    assert len(runs) == 2
    assert set(runs["status"]) == {"FINISHED"}
    # the driver's pid, its start time and host on every trial run: a sweep killed with -9
    # leaves them RUNNING, and the next start in the experiment marks them KILLED
    assert set(runs["tags.bindkit.pid"]) == {str(os.getpid())}
    assert set(runs["tags.bindkit.host"]) == {socket.gethostname()}
    assert runs["tags.bindkit.pid_start"].str.isdigit().all()
    assert (
        runs["metrics.training_iteration"] == 2
    ).all()  # two evals -> two reported curves points
    assert "params.coverage" in runs and set(runs["params.coverage"]) == {"0.25", "0.75"}
    for name in ("config.yaml", "results.json", "report.md", "coverage.png"):
        assert (tmp_path / name).exists()
    saved = json.loads((tmp_path / "results.json").read_text())
    assert set(saved["coverage"]["heldout_object_acc"]["C2V4"]) == {"0.25", "0.75"}
    assert runs["metrics.selected_bf_level1_r2"].notna().all()  # analysed once per trial
    for cell in saved["coverage"]["binding_function"]["C2V4"].values():
        assert 0.0 <= cell["level2_r2"] <= cell["level1_r2"] + 1e-6 <= 1.0 + 1e-6
        assert {"real_object_acc", "additive_object_acc", "global_product_object_acc"} <= set(cell)
    assert "| C2V4 | 0.25 |" in (tmp_path / "report.md").read_text().split("Level I R^2")[1]

    restored = main(argv)  # same out: Tuner.restore, nothing left to run
    assert restored["coverage"]["heldout_object_acc"] == results["coverage"]["heldout_object_acc"]
    after = mlflow.search_runs(experiment_names=["sweep_coverage_smoke"])
    assert (~after["tags.mlflow.runName"].str.endswith("-summary")).sum() == 2
