"""`ray job submit` of a tiny train_occlip run against a local head with token auth on."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_head(address: str, env: dict, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        probe = subprocess.run(
            ["ray", "job", "list", "--address", address], env=env, capture_output=True, timeout=60
        )
        if probe.returncode == 0:
            return
        time.sleep(2)
    raise TimeoutError(f"Ray head at {address} did not come up in {timeout} s")


@pytest.mark.slow
def test_job_submit_trains_on_a_token_auth_head(tmp_path):
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(16),
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        # Ray's OOM killer counts every process on the machine, not just this cluster's.
        "RAY_memory_monitor_refresh_ms": "0",
    }
    env.pop("RAY_ADDRESS", None)
    dashboard = _free_port()
    # Every port is free-picked: another Ray on this node (the shared test cluster) holds
    # the defaults, and the job agent cannot start on a taken port.
    # --block keeps the head in the foreground, so killing its process group stops this
    # cluster only (`ray stop` would also kill the test session's shared cluster).
    # The temp dir is short: Ray's unix socket paths must stay under ~107 characters.
    head = subprocess.Popen(
        [
            "ray",
            "start",
            "--head",
            "--block",
            f"--port={_free_port()}",
            "--num-cpus=4",
            "--include-dashboard=true",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={dashboard}",
            f"--dashboard-agent-listen-port={_free_port()}",
            f"--dashboard-agent-grpc-port={_free_port()}",
            f"--runtime-env-agent-port={_free_port()}",
            f"--metrics-export-port={_free_port()}",
            f"--temp-dir={tempfile.mkdtemp(prefix='rj', dir='/tmp')}",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        address = f"http://127.0.0.1:{dashboard}"
        _wait_for_head(address, env)
        unauthorised = subprocess.run(
            ["ray", "job", "list", "--address", address],
            env={**env, "RAY_AUTH_TOKEN": "wrong-token"},
            capture_output=True,
            timeout=120,
        )
        assert unauthorised.returncode != 0
        out = tmp_path / "job-out"
        smoke = ["--config", "pipelines/configs/smoke/train_occlip.yaml", "model=clip"]
        data = f"synthetic.root={tmp_path / 'datasets'}"
        submit = _submit(address, env, [*smoke, f"out={out}", data])
        assert submit.returncode == 0, submit.stdout[-3000:] + submit.stderr[-3000:]
        assert "succeeded" in submit.stdout
        # The job log a person reads: a progress line per interval, no stray tracebacks.
        progress = re.findall(r"clip step \d+/\d+ .* samples/s .* ETA .*", submit.stdout)
        assert progress
        assert len(progress) == len(set(progress)), "each progress line once, not twice"
        assert submit.stdout.count("Traceback") == 0, submit.stdout[-3000:]
        # A relative out= would land in Ray's per-job copy of the checkout: refused up front.
        relative = _submit(address, env, [*smoke, "out=outputs/job-relative", data])
        assert relative.returncode != 0
        assert "relative inside Ray's per-job copy" in relative.stdout + relative.stderr
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        head.wait(timeout=60)
    # After the cluster is gone, everything is where the job said it would be.
    assert f"results: {out}/results.json" in submit.stdout
    results = json.loads((out / "results.json").read_text())
    assert set(results) >= {"clip"}
    assert (out / "clip" / "checkpoint").is_dir()
    (run_line,) = [line for line in submit.stdout.splitlines() if line.startswith("MLflow run: ")]
    run_id = run_line.split()[2]
    run = MlflowClient(env["MLFLOW_TRACKING_URI"]).get_run(run_id)
    assert run.info.status == "FINISHED"
    assert "results.json" in {
        a.path for a in MlflowClient(env["MLFLOW_TRACKING_URI"]).list_artifacts(run_id)
    }


def _submit(address: str, env: dict, args: list[str]) -> subprocess.CompletedProcess:
    """`ray job submit --working-dir . -- python pipelines/train_occlip.py ARGS`, as the
    docs write it (retried while the job agent is still starting)."""
    command = ["ray", "job", "submit", "--address", address, "--working-dir", str(ROOT), "--"]
    command += ["python", "pipelines/train_occlip.py", *args]
    for _ in range(30):
        submit = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if "No available agent" not in submit.stderr:
            return submit
        time.sleep(2)
    return submit


def test_relative_out_is_refused_only_inside_a_shipped_working_dir(tmp_path, monkeypatch, capsys):
    from components.platform.config import ConfigError
    from components.platform.jobs import check_output_location

    shipped = tmp_path / "session_x" / "runtime_resources" / "working_dir_files" / "_ray_pkg_1"
    shipped.mkdir(parents=True)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    check_output_location("outputs/run")  # a plain checkout: relative is fine
    monkeypatch.chdir(shipped)
    with pytest.raises(ConfigError, match="out=outputs/run is relative"):
        check_output_location("outputs/run")
    check_output_location(str(tmp_path / "abs"))
    check_output_location("s3://bucket/run")
    assert "MLflow logs to sqlite:" in capsys.readouterr().err  # ./mlflow.db would vanish
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    check_output_location("s3://bucket/run")
    assert capsys.readouterr().err == ""
