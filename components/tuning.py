"""Ray Tune pieces every sweep shares: per-trial resources and restoring an interrupted run."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def trial_resources(cpus: float, gpus: float) -> dict[str, float]:
    """Resources per trial; ``gpus < 0`` means a quarter GPU when the cluster has GPUs."""
    import ray

    if gpus < 0:
        gpus = 0.25 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
    return {"cpu": cpus, "gpu": gpus}


def restored_tuner(experiment_path: str | Path, trainable: Any, resume: bool):
    """The interrupted Tuner at ``experiment_path``, or None when there is none to resume."""
    from ray import tune

    if resume and tune.Tuner.can_restore(str(experiment_path)):
        print(f"restoring Tune experiment from {experiment_path}")
        return tune.Tuner.restore(str(experiment_path), trainable=trainable, resume_errored=True)
    return None
