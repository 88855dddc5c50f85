"""Several Ray nodes on one machine, for tests and benchmarks of multi-node behaviour.

Each node is a `ray start --block` with its own temp dir and free ports, token auth on, one
``train_slot`` (so Ray Train places one worker on each) and, on the head, a ``head_slot``
(for drivers that must outlive a worker node). Driver programs run as separate processes
against it, as `ray job submit` would run them. stop() removes it all.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from components.platform.local_s3 import free_port

ROOT = Path(__file__).resolve().parents[2]  # the checkout: Ray workers import from it
BIN = Path(sys.executable).parent
NODE_PORTS = [
    "--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port",
]  # fmt: skip


class LocalCluster:
    """A head node plus ``add_node()`` workers, reachable at ``address`` with ``env``."""

    def __init__(self, env: dict[str, str], drivers: Path, num_cpus: int = 2):
        """``drivers``: the script ``driver(*args)`` runs (its first argument picks the job)."""
        self.drivers = drivers
        self.env = {
            **env,
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": secrets.token_hex(16),
            "PATH": f"{BIN}:{env.get('PATH', '')}",
            "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0",
            "PYTHONPATH": str(ROOT),
            # Ray's OOM killer counts every process on the machine; on a shared dev box
            # other jobs' memory would get this cluster's workers killed.
            "RAY_memory_monitor_refresh_ms": "0",
        }
        self.env.pop("RAY_ADDRESS", None)
        self.num_cpus = num_cpus
        self.nodes: list[subprocess.Popen] = []
        self.temp_dirs: list[str] = []
        port = free_port()
        self.address = f"127.0.0.1:{port}"
        self._start(
            ["--head", f"--port={port}", "--include-dashboard=false"]
            + [f"--ray-client-server-port={free_port()}"],
            {"head_slot": 1},
        )

    def _start(
        self, args: list[str], resources: dict[str, float] | None = None
    ) -> subprocess.Popen:
        # Every port is free-picked (the shared test cluster holds the defaults) and the
        # temp dir is short (Ray's socket paths must stay under ~107 characters).
        low = free_port()
        temp = tempfile.mkdtemp(prefix="rn", dir="/tmp")
        self.temp_dirs.append(temp)
        node = subprocess.Popen(
            [str(BIN / "ray"), "start", "--block", f"--num-cpus={self.num_cpus}", *args]
            + [f"--resources={json.dumps({'train_slot': 1, **(resources or {})})}"]
            + [f"{p}={free_port()}" for p in NODE_PORTS]
            + [f"--min-worker-port={low}", f"--max-worker-port={low + 60}"]
            + [f"--temp-dir={temp}"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.nodes.append(node)
        return node

    def add_node(self) -> subprocess.Popen:
        """Start a worker node that joins the head; returns its `ray start` process."""
        return self._start([f"--address={self.address}"])

    def wait_for_nodes(self, count: int, timeout: float = 420) -> None:
        deadline = time.monotonic() + timeout
        while self.alive_nodes() < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {count} Ray nodes alive after {timeout} s")
            time.sleep(2)

    def alive_nodes(self) -> int:
        try:
            probe = subprocess.run(
                [sys.executable, "-c", "import ray; ray.init(); "
                 "print(sum(n['Alive'] for n in ray.nodes()))"],
                env={**self.env, "RAY_ADDRESS": self.address},
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
        except subprocess.TimeoutExpired:  # a loaded machine: the caller asks again
            return 0
        counts = [line for line in probe.stdout.splitlines() if line.strip().isdigit()]
        return int(counts[-1]) if probe.returncode == 0 and counts else 0

    def driver(self, *args: str) -> subprocess.Popen:
        """Start a driver program (the ``drivers`` script with ``args``) against this cluster."""
        return subprocess.Popen(
            [sys.executable, str(self.drivers), *args],
            env={**self.env, "RAY_ADDRESS": self.address},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def run(self, *args: str, timeout: float = 900) -> dict:
        """Run a driver program to the end; returns its ``RESULT`` line as a dict."""
        proc = self.driver(*args)
        output, _ = proc.communicate(timeout=timeout)
        return parse_result(proc.returncode, output)

    def stop(self) -> None:
        for node in reversed(self.nodes):
            if node.poll() is None:
                os.killpg(node.pid, signal.SIGTERM)
                node.wait(timeout=60)
        for temp in self.temp_dirs:
            shutil.rmtree(temp, ignore_errors=True)


def parse_result(returncode: int, output: str) -> dict:
    """A driver's ``RESULT {...}`` line as a dict; its output tail when it failed."""
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    if returncode != 0 or not lines:
        raise RuntimeError(f"driver failed (exit {returncode}):\n{output[-4000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))
