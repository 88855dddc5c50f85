"""MLflow as a team runs it: PostgreSQL backend, S3 artifacts, basic auth, allowed hosts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
SEARCH = "/api/2.0/mlflow/experiments/search?max_results=1"


def test_unauthenticated_and_foreign_host_clients_are_refused(mlflow_server):
    url = mlflow_server.uri + SEARCH
    assert requests.get(url, timeout=30).status_code == 401
    wrong = (mlflow_server.username, "not-the-password")
    assert requests.get(url, auth=wrong, timeout=30).status_code == 401
    good = (mlflow_server.username, mlflow_server.password)
    assert requests.get(url, auth=good, timeout=30).status_code == 200
    # DNS-rebinding guard: a Host header outside --allowed-hosts is refused even with auth.
    foreign = {"Host": "attacker.example:5000"}
    assert requests.get(url, auth=good, headers=foreign, timeout=30).status_code == 403
    # A plain user may not create users: only the admin may.
    create = requests.post(
        mlflow_server.uri + "/api/2.0/mlflow/users/create",
        json={"username": "intruder", "password": "x" * 16},
        auth=good,
        timeout=30,
    )
    assert create.status_code == 403


@pytest.mark.slow
def test_pipeline_logs_with_credentials_from_env(
    ray_cluster, mlflow_server_env, s3_server, tmp_path
):
    from mlflow.tracking import MlflowClient

    from pipelines import build_synthetic

    build_synthetic.main(
        [
            "--config",
            str(ROOT / "pipelines/configs/smoke/build_synthetic.yaml"),
            f"out={tmp_path / 'w'}",
            "num_scenes=40",
            "world=clevr_pairs",
            "experiment=build_synthetic_auth",
        ]
    )
    client = MlflowClient(mlflow_server_env.uri)  # credentials come from the environment
    experiment = client.get_experiment_by_name("build_synthetic_auth")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.params["world"] == "clevr_pairs"
    card = json.loads((tmp_path / "w" / "card.json").read_text())
    assert run.data.metrics["build.train_scenes"] == card["splits"]["train"] > 0
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"card.json", "report.md", "config.yaml"} <= artifacts
    downloaded = client.download_artifacts(run.info.run_id, "card.json", str(tmp_path / "dl"))
    assert json.loads(Path(downloaded).read_text()) == card
    # The bytes live in the object store, under the server's artifact root.
    bucket, prefix = mlflow_server_env.artifacts.removeprefix("s3://").split("/", 1)
    keys = s3_server.keys(bucket, prefix)
    assert any(k.endswith(f"{run.info.run_id}/artifacts/card.json") for k in keys), keys[:5]
