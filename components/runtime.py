"""Joining or starting Ray for a pipeline, the same way in every entrypoint.

Pipelines call ``init_ray()`` once: under ``ray job submit`` (or with RAY_ADDRESS set) it
joins that cluster; otherwise it starts a private local one, never attaching by accident
to another job's ``ray start`` cluster on a shared node. On a small machine the local
cluster over-commits logical CPUs, because an actor pool plus a Train worker on 2 cores
starves Ray Data's read tasks and deadlocks (ecosystem.md 1.6); Tune sweeps pass the real
core count instead, since there one logical CPU is one concurrent trial.
Ray Data's progress bars redraw many times a second: they are on in a terminal and off in
job logs and redirected output, where they would bury everything else.
"""

from __future__ import annotations

import os
import sys

from components.tracking import runtime_env_vars

MIN_LOCAL_CPUS = 4


def init_ray(num_cpus: int | None = None) -> None:
    """Connect to the cluster in RAY_ADDRESS or start a local one (``num_cpus`` logical
    CPUs, default max(4, cores)); idempotent."""
    import ray
    import ray.data

    if ray.is_initialized():
        return
    env = {
        "env_vars": {**runtime_env_vars(), "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"},
        "worker_process_setup_hook": "components.runtime.use_own_cluster_address",
    }
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address=os.environ["RAY_ADDRESS"], runtime_env=env)
    else:
        local = num_cpus or max(MIN_LOCAL_CPUS, os.cpu_count() or 1)
        ray.init(address="local", num_cpus=local, include_dashboard=False, runtime_env=env)
    ray.data.DataContext.get_current().enable_progress_bars = sys.stderr.isatty()


def use_own_cluster_address() -> None:
    """Ray worker start-up hook: RAY_ADDRESS = this worker's own cluster.

    Ray Train's PlacementGroupCleaner asks the State API whether the controller lives; with
    no RAY_ADDRESS the API looks for Ray on the host and, where two local clusters run (a
    test session's and a pipeline's, or two users'), raises "Found multiple active Ray
    instances" in a thread, printing a traceback every run (issue 23)."""
    import ray

    os.environ.setdefault("RAY_ADDRESS", ray.get_runtime_context().gcs_address)
