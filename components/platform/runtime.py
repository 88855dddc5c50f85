"""Joining or starting Ray for a pipeline, the same way in every entrypoint.

Pipelines call ``init_ray()`` once: under ``ray job submit`` (or with RAY_ADDRESS set) it
joins that cluster; otherwise it starts a private local one, never attaching by accident
to another job's ``ray start`` cluster on a shared node. On a small machine the local
cluster over-commits logical CPUs, because an actor pool plus a Train worker on 2 cores
starves Ray Data's read tasks and deadlocks (docs/methods/ecosystem.md 1.6); Tune sweeps pass the real
core count instead, since there one logical CPU is one concurrent trial.
Ray Data's progress bars redraw many times a second: they are on in a terminal and off in
job logs and redirected output, where they would bury everything else.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from components.platform.tracking import runtime_env_vars

MIN_LOCAL_CPUS = 4
JOB_CONFIG_VAR = "RAY_JOB_CONFIG_JSON_ENV_VAR"  # the submitted job's config, set by Ray


def init_ray(num_cpus: int | None = None) -> None:
    """Connect to the cluster in RAY_ADDRESS or start a local one (``num_cpus`` logical
    CPUs, default max(4, cores)); idempotent."""
    import ray
    import ray.data

    if ray.is_initialized():
        return
    env = without_job_keys(
        {
            "env_vars": {**runtime_env_vars(), "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"},
            "worker_process_setup_hook": "components.platform.runtime.use_own_cluster_address",
        }
    )
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address=os.environ["RAY_ADDRESS"], runtime_env=env)
    else:
        local = num_cpus or max(MIN_LOCAL_CPUS, os.cpu_count() or 1)
        # The dashboard serves the State API that Ray Train's placement-group cleaner polls
        # each second; without one the query falls back to 127.0.0.1:8265, which is nobody
        # (a warning per poll) or another cluster that refuses our token (an
        # AuthenticationError traceback). Bound to loopback, on a free port.
        ray.init(
            address="local",
            num_cpus=local,
            include_dashboard=True,
            dashboard_host="127.0.0.1",
            dashboard_port=0,
            runtime_env=env,
        )
    ray.data.DataContext.get_current().enable_progress_bars = sys.stderr.isatty()


def without_job_keys(env: dict[str, Any]) -> dict[str, Any]:
    """``env`` less what a submitted job's own runtime env already sets.

    Under ``ray job submit --runtime-env-json '{"env_vars": {"MLFLOW_TRACKING_URI": ...}}'``
    Ray refuses a ray.init runtime env that sets the same key ("Failed to merge the Job's
    runtime env"); the job's value is the user's choice and already reaches every worker.
    """
    job = json.loads(os.environ.get(JOB_CONFIG_VAR) or "{}").get("runtime_env") or {}
    taken = set(job.get("env_vars") or {})
    kept = {key: value for key, value in env.items() if key != "env_vars" and key not in job}
    kept["env_vars"] = {k: v for k, v in env.get("env_vars", {}).items() if k not in taken}
    return kept


def use_own_cluster_address() -> None:
    """Ray worker start-up hook: RAY_ADDRESS = this worker's own cluster.

    Ray Train's PlacementGroupCleaner asks the State API whether the controller lives; with
    no RAY_ADDRESS the API looks for Ray on the host and, where two local clusters run (a
    test session's and a pipeline's, or two users'), raises "Found multiple active Ray
    instances" in a thread, printing a traceback every run (issue 23)."""
    import ray

    os.environ.setdefault("RAY_ADDRESS", ray.get_runtime_context().gcs_address)
