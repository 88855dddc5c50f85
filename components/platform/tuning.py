"""Ray Tune pieces every sweep shares: per-trial resources and restoring an interrupted run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.platform.config import check


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


@dataclass
class SweepSettings:
    """Where a sweep writes and runs, and how it is tracked: the keys every sweep config has.

    A sweep's config extends this dataclass and gives ``out``, ``name`` and ``experiment``
    their defaults."""

    out: str  # output folder: manifest, results, report
    name: str  # Tune experiment name (trial folders under out/)
    experiment: str  # MLflow experiment of the trials and the summary
    asha: bool = False  # stop weak trials early with ASHA
    cpus_per_trial: float = 1.0  # CPUs per trial (sets concurrency)
    gpus_per_trial: float = -1.0  # < 0: 0.25 of a GPU when the cluster has GPUs, else none
    max_concurrent_trials: int = 0  # 0: as many as resources allow
    resume: bool = True  # continue a matching interrupted sweep in out/
    overwrite: bool = False  # true: empty an out= made with another grid and sweep afresh

    def validate(self) -> None:
        check(self.cpus_per_trial > 0, "cpus_per_trial", self.cpus_per_trial, "> 0")


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

    from components.platform.tracking import trial_logger

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
