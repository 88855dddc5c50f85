"""`ray job submit` of a tiny train_occlip run against a local head with token auth on."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

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
        command = [
            "ray",
            "job",
            "submit",
            "--address",
            address,
            "--working-dir",
            str(ROOT),
            "--",
            "python",
            "pipelines/train_occlip.py",
            "--config",
            "pipelines/configs/smoke/train_occlip.yaml",
            "model=clip",
            f"out={out}",
            f"synthetic.root={tmp_path / 'datasets'}",
        ]
        for _ in range(30):  # the job agent comes up a little after the dashboard answers
            submit = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
            if "No available agent" not in submit.stderr:
                break
            time.sleep(2)
        assert submit.returncode == 0, submit.stdout[-3000:] + submit.stderr[-3000:]
        assert "succeeded" in submit.stdout
        results = json.loads((out / "results.json").read_text())
        assert set(results) == {"clip"} and 0.0 <= results["clip"]["swap_att"] <= 1.0
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        head.wait(timeout=60)
