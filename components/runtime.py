"""Joining or starting Ray for a pipeline, the same way in every entrypoint.

Pipelines call ``init_ray()`` once: under ``ray job submit`` (or with RAY_ADDRESS set) it
joins that cluster; otherwise it starts a local one. On a small machine the local cluster
over-commits logical CPUs, because an actor pool plus a Train worker on 2 cores starves
Ray Data's read tasks and deadlocks (ecosystem.md 1.6).
"""

from __future__ import annotations

import os

from components.tracking import runtime_env_vars

MIN_LOCAL_CPUS = 4


def init_ray(num_cpus: int | None = None) -> None:
    """Connect to the cluster in RAY_ADDRESS or start a local one; idempotent."""
    import ray
    import ray.data

    if ray.is_initialized():
        return
    env = {"env_vars": {**runtime_env_vars(), "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}}
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address=os.environ["RAY_ADDRESS"], runtime_env=env)
    else:
        local = num_cpus or max(MIN_LOCAL_CPUS, os.cpu_count() or 1)
        ray.init(num_cpus=local, include_dashboard=False, runtime_env=env)
    ray.data.DataContext.get_current().enable_progress_bars = True
