"""MLflow holds the whole run (issue 23 item 3) and killed runs do not stay RUNNING (22 item 4)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from components.platform.tracking import HOST_TAG, PID_TAG, mark_killed_runs, pipeline_run

ROOT = Path(__file__).resolve().parents[1]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_killed_run_and_its_children_are_marked_killed_on_next_start(mlflow_uri):
    import mlflow

    mlflow.set_tracking_uri(mlflow_uri)
    mlflow.set_experiment("kill_drill")
    client = mlflow.MlflowClient(mlflow_uri)
    experiment = client.get_experiment_by_name("kill_drill").experiment_id
    import socket

    tags = {PID_TAG: str(_dead_pid()), HOST_TAG: socket.gethostname()}
    parent = client.create_run(experiment, tags=tags, run_name="killed")
    child = client.create_run(
        experiment, tags={"mlflow.parentRunId": parent.info.run_id}, run_name="child"
    )
    live = client.create_run(
        experiment, tags={PID_TAG: "1", HOST_TAG: socket.gethostname()}, run_name="live"
    )
    with pipeline_run("kill_drill", "next") as run:
        assert client.get_run(run.info.run_id).data.tags[PID_TAG].isdigit()
    statuses = {r: client.get_run(r).info.status for r in (parent.info.run_id, child.info.run_id)}
    assert set(statuses.values()) == {"KILLED"}
    assert client.get_run(live.info.run_id).info.status == "RUNNING"  # pid 1 is alive
    assert mark_killed_runs("kill_drill") == []  # nothing left to mark


@pytest.mark.slow
def test_smoke_train_occlip_mlflow_run_holds_params_curves_checkpoint_gallery(
    ray_cluster, mlflow_uri, tmp_path
):
    import mlflow

    from pipelines.train_occlip import main

    smoke = ROOT / "pipelines" / "configs" / "smoke" / "train_occlip.yaml"
    main(
        [
            "--config",
            str(smoke),
            "model=occlip",
            f"out={tmp_path / 'out'}",
            f"synthetic.root={tmp_path / 'data'}",
            "synthetic.num_scenes=120",
            "eval_limit=8",
        ]
    )
    client = mlflow.MlflowClient(mlflow_uri)
    experiment = client.get_experiment_by_name("train_occlip").experiment_id
    runs = client.search_runs([experiment])
    child = next(r for r in runs if r.info.run_name == "occlip-seed0")
    params = child.data.params
    for key in (
        "backbone.name",
        "synthetic.world",
        "train.steps",
        "scaling.num_workers",
        "eval_split",
    ):
        assert key in params, f"child run lacks param {key}"
    assert params["model"] == "occlip" and params["train.steps"] == "4"
    assert "start_step" not in child.data.metrics
    loss = client.get_metric_history(child.info.run_id, "loss")
    assert sorted(m.step for m in loss) == [2, 4]  # the training step, every log_every=2
    assert any(k.startswith("test_heldout.") for k in child.data.metrics)  # eval on the child
    artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
    assert {"checkpoint", "plots"} <= artifacts
    checkpoint = {Path(a.path).name for a in client.list_artifacts(child.info.run_id, "checkpoint")}
    assert checkpoint == {"config.json", "model.safetensors"}  # no optimizer state
    plots = {Path(a.path).name for a in client.list_artifacts(child.info.run_id, "plots")}
    assert "curves.png" in plots
    failures = client.list_artifacts(child.info.run_id, "failures")
    assert failures and all(a.path.endswith(".png") for a in failures)
    parent = next(r for r in runs if r.info.run_name.startswith("train_occlip"))
    assert parent.info.status == "FINISHED"
    # no empty level between the pipeline run and its model runs
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert not [r for r in runs if r.info.run_name == "seed0"]
