"""Cluster manifests are valid and runnable; pipelines log to a real MLflow server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
RAY_PIN = "2.60.0"


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _check_cluster_spec(spec: dict, where: str) -> None:
    assert spec["rayVersion"] == RAY_PIN, where
    assert spec.get("authOptions", {}).get("mode") == "token", f"{where}: token auth must be on"
    head = spec["headGroupSpec"]["template"]["spec"]["containers"]
    assert head and head[0]["image"], where
    for group in spec.get("workerGroupSpecs", []):
        assert group["groupName"] and group["template"]["spec"]["containers"][0]["image"], where
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], where


@pytest.mark.parametrize(
    "path", sorted((ROOT / "infra" / "kuberay").glob("*.yaml")), ids=lambda p: p.name
)
def test_kuberay_manifest_has_the_fields_kuberay_requires(path):
    (doc,) = _docs(path)
    assert doc["apiVersion"] == "ray.io/v1" and doc["metadata"]["name"]
    if doc["kind"] == "RayCluster":
        _check_cluster_spec(doc["spec"], path.name)
    else:
        assert doc["kind"] == "RayJob"
        entrypoint = doc["spec"]["entrypoint"].split()
        assert entrypoint[0] == "python" and (ROOT / entrypoint[1]).is_file(), entrypoint
        assert doc["spec"]["shutdownAfterJobFinishes"] is True
        _check_cluster_spec(doc["spec"]["rayClusterSpec"], path.name)


def test_docker_image_and_launcher_pin_the_same_ray():
    dockerfile = (ROOT / "infra" / "Dockerfile").read_text()
    assert f"rayproject/ray:{RAY_PIN}-py311-gpu" in dockerfile
    assert f"ray[default,data,train,tune]=={RAY_PIN}" in (ROOT / "pyproject.toml").read_text()
    launcher = yaml.safe_load((ROOT / "infra" / "cluster.yaml").read_text())
    assert launcher["head_node_type"] in launcher["available_node_types"]
    mlflow_docs = _docs(ROOT / "infra" / "mlflow" / "mlflow-server.yaml")
    assert {d["kind"] for d in mlflow_docs} == {"Deployment", "Service"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_pipeline_logs_to_a_real_mlflow_server(ray_cluster, tmp_path, monkeypatch):
    import mlflow
    from mlflow.tracking import MlflowClient

    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "artifacts"),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "mlflow server did not start"
                assert server.poll() is None, "mlflow server exited"
                time.sleep(1)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        sys.path.insert(0, str(ROOT / "pipelines"))
        try:
            import build_synthetic
        finally:
            sys.path.remove(str(ROOT / "pipelines"))
        build_synthetic.main(
            [
                "--config",
                str(ROOT / "pipelines/configs/smoke/build_synthetic.yaml"),
                f"out={tmp_path / 'w'}",
                "num_scenes=40",
                "world=clevr_pairs",
            ]
        )
        client = MlflowClient(uri)
        experiment = client.get_experiment_by_name("build_synthetic")
        (run,) = client.search_runs([experiment.experiment_id])
        assert run.data.params["world"] == "clevr_pairs"
        assert run.data.metrics["build.train_scenes"] == 32
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"card.json", "report.md", "config.yaml"} <= artifacts
    finally:
        mlflow.set_tracking_uri(None)
        os.killpg(server.pid, 15)
        server.wait(timeout=60)
