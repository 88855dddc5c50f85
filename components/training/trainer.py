"""Driver side of training: datasets + ScalingConfig + RunConfig -> TorchTrainer.fit().

The same call trains on one CPU worker in tests and N GPU workers on a cluster; only
``ScalingSettings`` changes. ``num_workers=0`` is Ray Train's local mode (no Ray actors,
but also no persisted checkpoints), useful for quick debugging.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from components.training.loop import TrainConfig, train_loop_per_worker


@dataclass
class ScalingSettings:
    num_workers: int = 1
    use_gpu: bool | None = None  # None: use GPUs when the cluster has them
    cpus_per_worker: float = 1.0
    max_failures: int = 0  # worker-failure restarts from the last checkpoint


def cluster_has_gpus() -> bool:
    import ray

    return ray.cluster_resources().get("GPU", 0) > 0


def fit(
    model_spec: dict[str, Any],
    train: TrainConfig,
    dataset,
    scaling: ScalingSettings,
    storage_path: str | Path,
    run_name: str,
    mlflow: dict[str, str] | None = None,
    resume: str | None = None,
):
    """Train ``model_spec`` on a Ray Dataset of shard rows; returns Ray's Result.

    ``resume``: None starts fresh (an earlier run's folder under the same name is cleared,
    because Ray Train would otherwise silently continue it, even a finished one); "auto"
    continues Ray's own run folder; any other value is a checkpoint directory to start from.
    Worker failures inside one call always restart from the last checkpoint.
    """
    import ray.train
    from ray.train.torch import TorchTrainer

    run_dir = Path(storage_path).resolve() / run_name
    if resume is None and run_dir.exists():
        shutil.rmtree(run_dir)
    checkpoint_dir = None if resume in (None, "auto") else resume

    use_gpu = cluster_has_gpus() if scaling.use_gpu is None else scaling.use_gpu
    resources = {"CPU": scaling.cpus_per_worker, **({"GPU": 1} if use_gpu else {})}
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={
            "model": model_spec,
            "train": asdict(train),
            "mlflow": mlflow,
            "resume": checkpoint_dir,
        },
        scaling_config=ray.train.ScalingConfig(
            num_workers=scaling.num_workers,
            use_gpu=use_gpu,
            resources_per_worker=resources if scaling.num_workers else None,
        ),
        run_config=ray.train.RunConfig(
            name=run_name,
            storage_path=str(Path(storage_path).resolve()),
            failure_config=ray.train.FailureConfig(max_failures=scaling.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
        ),
        datasets={"train": dataset},
    )
    return trainer.fit()
