"""Where a submitted job's results go, checked before it starts and said when it ends.

Under ``ray job submit --working-dir .`` the entrypoint runs inside Ray's per-job copy of
the checkout (``<temp>/session_*/runtime_resources/working_dir_files/_ray_pkg_*``), which
is deleted with the Ray session. A relative ``out=`` or the default ``./mlflow.db`` would
land there and vanish after ``ray stop``; so a relative ``out=`` is refused there (absolute
path or URI instead), a local-SQLite MLflow store is warned about, and every pipeline
prints where its results and MLflow run are.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SHIPPED_MARKER = f"{os.sep}runtime_resources{os.sep}working_dir_files{os.sep}"


def in_shipped_working_dir(cwd: str | None = None) -> bool:
    """True when running inside a working dir that Ray shipped for a job (or a task)."""
    return SHIPPED_MARKER in (cwd or os.getcwd()) + os.sep


def check_output_location(out: str) -> None:
    """Refuse a relative ``out=`` inside a shipped working dir; warn about a local MLflow
    store there. Raises ConfigError (one line, before any work starts)."""
    from components.platform.config import ConfigError
    from components.platform.storage import is_uri
    from components.platform.tracking import tracking_uri

    if not in_shipped_working_dir():
        return
    if out and not is_uri(out) and not Path(out).is_absolute():
        raise ConfigError(
            f"out={out} is relative inside Ray's per-job copy of the working dir "
            f"({os.getcwd()}), which is deleted with the Ray session: pass an absolute "
            "out=/shared/path or a URI (out=s3://bucket/run)"
        )
    uri = tracking_uri()
    if uri.startswith("sqlite:") and SHIPPED_MARKER in uri:
        print(
            f"warning: MLflow logs to {uri}, inside the shipped working dir; it is deleted "
            "with the Ray session. Set MLFLOW_TRACKING_URI (a server, or an absolute sqlite "
            "path) in the head's environment or with --runtime-env-json.",
            file=sys.stderr,
            flush=True,
        )
