"""MLflow set-up in one place: where runs go and how a pipeline run is recorded.

MLflow >= 3.13 refuses a ``./mlruns`` file store, so the default is a SQLite database
under the working directory; ``MLFLOW_TRACKING_URI`` overrides it (a server on a cluster).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DEFAULT_DB = "mlflow.db"
OUTPUT_FILES = ("config.yaml", "results.json", "report.md")


def tracking_uri() -> str:
    """The URI every bindkit process logs to (env var first, else local SQLite)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{Path.cwd() / DEFAULT_DB}"


def configure(experiment: str) -> str:
    """Point mlflow at our store and select (creating if needed) the experiment."""
    import mlflow

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment)
    return uri


def runtime_env_vars() -> dict[str, str]:
    """Env vars Ray workers need to log to the same store as the driver."""
    return {"MLFLOW_TRACKING_URI": tracking_uri()}


@contextlib.contextmanager
def pipeline_run(
    experiment: str, run_name: str, params: dict[str, Any] | None = None
) -> Iterator[Any]:
    """Start an MLflow run with flattened params; yields the active run."""
    import mlflow

    from components.config import flatten

    configure(experiment)
    with mlflow.start_run(run_name=run_name) as run:
        if params:
            flat = {k: str(v)[:500] for k, v in flatten(params).items()}
            mlflow.log_params(flat)
        yield run


def log_results(results: dict[str, Any], prefix: str = "") -> None:
    """Log a nested results dict's numbers as metrics named ``a.b.c``."""
    import mlflow

    from components.config import flatten

    metrics = {
        (prefix + k).replace("/", "."): float(v)
        for k, v in flatten(results).items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    if metrics:
        mlflow.log_metrics(metrics)


def write_outputs(out: str | Path, config: Any, results: dict[str, Any], report: str) -> Path:
    """Write the pipeline convention files to out/ and attach them to the active MLflow run."""
    from components.config import save_config

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "config.yaml")
    (out / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True))
    (out / "report.md").write_text(report)
    import mlflow

    if mlflow.active_run() is not None:  # every pipeline run keeps its headline files
        for name in OUTPUT_FILES:
            mlflow.log_artifact(str(out / name))
    return out


def log_outputs(out: str | Path) -> None:
    """Attach an output folder's files to the active MLflow run."""
    import mlflow

    mlflow.log_artifacts(str(out))
