"""Ray Tune pieces every sweep shares: per-trial resources and restoring an interrupted run."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


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


class SweepSettings(Protocol):
    """The fields every sweep config carries (where it runs, how it is tracked)."""

    name: str
    out: str
    experiment: str
    cpus_per_trial: float
    gpus_per_trial: float
    max_concurrent_trials: int
    resume: bool


def fit_sweep(
    trainable: Any,
    param_space: dict[str, Any],
    settings: SweepSettings,
    *,
    metric: str,
    mode: str,
    scheduler: Any = None,
    checkpoints_to_keep: int | None = None,
) -> Any:
    """Fit a Tune sweep under ``out/tune/name``, restoring it when an earlier run was cut off.

    Every trial becomes an MLflow run in ``experiment`` (params = its config, metrics = its
    reports), so a sweep on a cluster is browsed like any other bindkit run.
    """
    from ray import tune

    from components.tracking import trial_logger

    resources = trial_resources(settings.cpus_per_trial, settings.gpus_per_trial)
    trainable = tune.with_resources(trainable, resources)
    storage = Path(settings.out).resolve() / "tune"
    restored = restored_tuner(storage / settings.name, trainable, settings.resume)
    if restored is not None:
        return restored.fit()
    tuner = tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric=metric,
            mode=mode,
            scheduler=scheduler,
            max_concurrent_trials=settings.max_concurrent_trials or None,
        ),
        run_config=tune.RunConfig(
            name=settings.name,
            storage_path=str(storage),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=checkpoints_to_keep),
            callbacks=[trial_logger(settings.experiment)],
        ),
    )
    return tuner.fit()
