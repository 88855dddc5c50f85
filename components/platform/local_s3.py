"""An S3-compatible object store on this machine: moto's standalone server, over real HTTP.

Not an in-process patch: pyarrow, boto3, s3fs, MLflow and Ray workers (other processes,
other Ray nodes) all reach it on 127.0.0.1 through the standard AWS variables, exactly as
they would reach S3 or MinIO on a cluster. Tests and benchmarks/cluster.py run their URIs
against it; ``moto_server`` comes with the dev extras (``moto[server]``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MOTO_SERVER = Path(sys.executable).parent / "moto_server"


@dataclass(frozen=True)
class S3Server:
    """Where the server listens and the environment a client process needs to reach it."""

    endpoint: str
    env: dict[str, str]

    def bucket(self, prefix: str = "t") -> str:
        """Create a fresh bucket and return its name."""
        import boto3

        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=self.endpoint).create_bucket(Bucket=name)
        return name

    def read(self, bucket: str, key: str) -> bytes:
        import boto3

        client = boto3.client("s3", endpoint_url=self.endpoint)
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key under ``prefix`` (paginated, sorted)."""
        import boto3

        pages = boto3.client("s3", endpoint_url=self.endpoint).get_paginator("list_objects_v2")
        return sorted(
            item["Key"]
            for page in pages.paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, what: str, timeout: float = 60) -> None:
    """Block until ``process`` accepts connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"{what} exited with code {process.returncode}") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not listen on port {port} in {timeout} s") from None
            time.sleep(0.3)


def s3_env(endpoint: str) -> dict[str, str]:
    """The variables every S3 client in play reads: boto3/s3fs (AWS_ENDPOINT_URL),
    pyarrow's S3FileSystem (AWS_ENDPOINT_URL_S3 and AWS_ENDPOINT_URL), MLflow's artifact
    client (MLFLOW_S3_ENDPOINT_URL); moto accepts any credentials."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ENDPOINT_URL_S3": endpoint,
        "MLFLOW_S3_ENDPOINT_URL": endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@contextlib.contextmanager
def running_s3_server() -> Iterator[S3Server]:
    """A moto S3 server on a free port, its variables exported to this process (and so to
    every subprocess and Ray worker started after it) until the block ends."""
    port = free_port()
    process = subprocess.Popen(
        [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    env = s3_env(endpoint)
    saved = {k: os.environ.get(k) for k in env}
    try:
        wait_for_port(port, process, "moto_server")
        os.environ.update(env)
        yield S3Server(endpoint, env)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        process.terminate()
        process.wait(timeout=30)
