"""PostgreSQL and an authenticated MLflow tracking server, started for real by the tests.

The MLflow server is set up as a team would run it (infra/README.md section 3): PostgreSQL
as backend store, the S3 server (tests/s3_server.py) as artifact store behind MLflow's
artifact proxy, the basic-auth app on, ``--allowed-hosts`` set. Pipelines reach it with
MLFLOW_TRACKING_URI / MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD only.
Both servers live for the test session and are stopped at its end.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.platform.local_s3 import S3Server, free_port, wait_for_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_USER = "bindkit"


@dataclass(frozen=True)
class Postgres:
    port: int
    password: str

    def uri(self, database: str) -> str:
        """SQLAlchemy URI (psycopg 3 driver) of ``database`` on this server."""
        return f"postgresql+psycopg://{PG_USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=PG_USER, password=self.password,
            dbname="postgres", autocommit=True,
        ) as conn:  # fmt: skip
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.uri(name)


@dataclass(frozen=True)
class MlflowServer:
    uri: str
    username: str  # a plain (non-admin) user, as a pipeline would log in
    password: str
    artifacts: str  # s3://bucket/prefix where the server stores artifacts

    @property
    def env(self) -> dict[str, str]:
        """What a pipeline process needs to log here, and nothing else."""
        return {
            "MLFLOW_TRACKING_URI": self.uri,
            "MLFLOW_TRACKING_USERNAME": self.username,
            "MLFLOW_TRACKING_PASSWORD": self.password,
        }


def _as_postgres_user(command: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: drop to the system ``postgres`` user."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A throwaway PostgreSQL 15 cluster on 127.0.0.1 (password auth, free port)."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL 15 is not installed ({PG_BIN}/initdb missing)")
    root = Path(tempfile.mkdtemp(prefix="bindkit-pg-"))
    password = secrets.token_hex(12)
    (root / "pwfile").write_text(password)
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for path in (root, root / "pwfile"):
            os.chown(path, user.pw_uid, user.pw_gid)
    data = root / "data"
    subprocess.run(
        _as_postgres_user(
            [str(PG_BIN / "initdb"), "-D", str(data), "-U", PG_USER, f"--pwfile={root}/pwfile"]
            + ["--auth=scram-sha-256", "--encoding=UTF8", "--no-sync"]
        ),
        check=True,
        capture_output=True,
    )
    port = free_port()
    server = subprocess.Popen(
        _as_postgres_user(
            [str(PG_BIN / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port)]
            + ["-k", str(root), "-c", "fsync=off"]
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_port(port, server, "postgres")
        yield Postgres(port, password)
    finally:
        server.terminate()  # SIGTERM: PostgreSQL's "smart" shutdown
        server.wait(timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def mlflow_server(
    postgres: Postgres, s3_server: S3Server, tmp_path_factory
) -> Iterator[MlflowServer]:
    """``mlflow server --app-name basic-auth`` on PostgreSQL with S3 artifacts; yields the
    URI and a non-admin user's credentials (created through the admin API)."""
    from mlflow.server.auth.client import AuthServiceClient

    root = tmp_path_factory.mktemp("mlflow-server")
    artifacts = f"s3://{s3_server.bucket('mlflow')}/artifacts"
    admin_password = secrets.token_hex(12)
    auth_config = root / "basic_auth.ini"
    auth_config.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = {postgres.create_database('mlflow_auth')}\n"
        "admin_username = admin\n"
        f"admin_password = {admin_password}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    port = free_port()
    host = f"127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth"]
        + ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
        + ["--allowed-hosts", f"{host},localhost:{port}"]
        + ["--backend-store-uri", postgres.create_database("mlflow")]
        + ["--artifacts-destination", artifacts, "--serve-artifacts"],
        env={**os.environ, **s3_server.env, "MLFLOW_AUTH_CONFIG_PATH": str(auth_config)}
        | {"MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16)},
        stdout=open(root / "server.log", "w"),  # noqa: SIM115  (kept open for the server's life)
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    uri = f"http://{host}"
    try:
        wait_for_port(port, server, "mlflow server", timeout=180)
        user, password = "pipeline", secrets.token_hex(12)
        os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = (
            "admin",
            admin_password,
        )
        try:
            AuthServiceClient(uri).create_user(user, password)
        finally:
            del os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]
        yield MlflowServer(uri, user, password, artifacts)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, 15)
            server.wait(timeout=60)


@pytest.fixture
def mlflow_server_env(mlflow_server: MlflowServer, monkeypatch) -> MlflowServer:
    """Point this test (and the processes it starts) at the authenticated server."""
    for key, value in mlflow_server.env.items():
        monkeypatch.setenv(key, value)
    return mlflow_server
