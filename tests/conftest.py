"""Shared fixtures: one local Ray cluster per test session and a throwaway MLflow store."""

from __future__ import annotations

import os

import pytest
from s3_server import s3_server  # noqa: F401  (fixture: moto S3 over HTTP)
from services import mlflow_server, mlflow_server_env, postgres  # noqa: F401  (test servers)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray cluster shared by every Ray test (startup costs seconds).

    Logical CPUs are over-committed (6 on a 2-core machine): an actor pool plus a Train
    worker otherwise starve Ray Data's read tasks and the job hangs (docs/methods/ecosystem.md 1.6).
    """
    import ray

    if not ray.is_initialized():
        # The dashboard (loopback, free port) serves the State API Ray Train's cleaner polls.
        ray.init(
            address="local",
            num_cpus=6,
            include_dashboard=True,
            dashboard_host="127.0.0.1",
            dashboard_port=0,
            log_to_driver=False,
        )
    import ray.data

    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


@pytest.fixture
def mlflow_uri(tmp_path, monkeypatch):
    """A fresh SQLite MLflow store for one test, exported so Ray workers see it too."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models on a shared 2-core box: OpenMP threads only contend (8x slower measured)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def parser():
    """The spaCy parser, loaded once for every parsing test (a module that needs another
    parser defines its own ``parser`` fixture, which wins)."""
    from components.parsing.spacy.parser import SpacyParser

    try:
        return SpacyParser()
    except OSError as err:
        pytest.skip(f"no spaCy English pipeline installed: {err}")
