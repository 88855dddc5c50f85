"""Driver side of training: datasets + ScalingConfig + RunConfig -> TorchTrainer.fit().

The same call trains on one CPU worker in tests and N GPU workers on a cluster; only
``ScalingSettings`` changes. ``num_workers=0`` is Ray Train's local mode (no Ray actors,
but also no persisted checkpoints), useful for quick debugging.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pyarrow.fs import FileType

from components.platform.config import ConfigError, InputError, InvalidValue, check
from components.platform.storage import filesystem_and_path, is_uri
from components.training.loop import TrainConfig, train_loop_per_worker
from components.training.state import check_resume_target

MAX_WORKERS = 4096  # far past any cluster bindkit trains on; a typo (8000 for 8) is refused


@dataclass
class ScalingSettings:
    num_workers: int = 1  # Ray Train workers (one per GPU on a cluster); 0 = local mode
    use_gpu: bool | None = None  # None: use GPUs when the cluster has them
    cpus_per_worker: float = 1.0  # CPUs reserved per worker
    max_failures: int = 0  # worker-failure restarts from the last checkpoint; -1 = forever
    # custom resources per worker, e.g. {train_slot: 1} with one slot per node: one worker per node
    worker_resources: dict[str, float] = field(default_factory=dict)

    def validate(self) -> None:
        check(
            0 <= self.num_workers <= MAX_WORKERS,
            "num_workers",
            self.num_workers,
            f"an integer in [0, {MAX_WORKERS}] (0 = Ray Train's local mode)",
        )
        check(self.cpus_per_worker >= 0, "cpus_per_worker", self.cpus_per_worker, "a number >= 0")
        check(
            self.max_failures >= -1,
            "max_failures",
            self.max_failures,
            "an integer >= -1 (-1 = restart forever)",
        )
        for name, amount in self.worker_resources.items():
            check(
                math.isfinite(amount) and amount >= 0,
                f"worker_resources.{name}",
                amount,
                "a finite amount >= 0",
            )

    def per_worker(self, use_gpu: bool) -> dict[str, float]:
        """The Ray resources one training worker reserves."""
        return {
            "CPU": self.cpus_per_worker,
            **({"GPU": 1.0} if use_gpu else {}),
            **self.worker_resources,
        }


def cluster_has_gpus() -> bool:
    import ray

    return ray.cluster_resources().get("GPU", 0) > 0


def _cluster_capacity() -> dict[str, float] | None:
    """What the Ray cluster can ever hold: the autoscaler's maximum when it reports one,
    else this process's own local cluster as it is; None for a joined cluster that
    reports no maximum (it may grow, so nothing can be refused from here)."""
    import ray

    try:  # what Ray Train's own start-up check reads; a private API, so any failure = none
        from ray._private.state import state

        maximum = state.get_max_resources_from_cluster_config()
    except Exception:  # noqa: BLE001
        maximum = None
    if maximum:
        return {k: float(v) for k, v in maximum.items()}
    if os.environ.get("RAY_ADDRESS"):
        return None
    return ray.cluster_resources()


def check_cluster_fits(scaling: ScalingSettings) -> None:
    """Refuse, before any worker is asked for, a worker group the cluster cannot place:
    Ray Train would otherwise retry its start forever (8 workers on 4 CPUs hung)."""
    if scaling.num_workers == 0:  # local mode: the driver process trains
        return
    capacity = _cluster_capacity()
    if capacity is None:
        return
    use_gpu = cluster_has_gpus() if scaling.use_gpu is None else scaling.use_gpu
    per_worker = scaling.per_worker(use_gpu)
    short = {
        name: (scaling.num_workers * amount, capacity.get(name, 0.0))
        for name, amount in per_worker.items()
        if scaling.num_workers * amount > capacity.get(name, 0.0)
    }
    if short:
        asked = ", ".join(f"{asked:g} {name}" for name, (asked, _) in short.items())
        has = ", ".join(f"{held:g} {name}" for name, (_, held) in short.items())
        each = ", ".join(f"{amount:g} {name}" for name, amount in per_worker.items())
        raise InvalidValue(
            "scaling.num_workers",
            scaling.num_workers,
            f"workers that fit the Ray cluster: {scaling.num_workers} x ({each}) asks {asked}, "
            f"the cluster has {has}; lower scaling.num_workers or the per-worker resources",
        )


def check_rows(rows: int, split: str, train: TrainConfig, num_workers: int) -> None:
    """Refuse, before any worker starts, a split that gives a worker less than one batch."""
    per_worker = rows // max(1, num_workers)
    if per_worker < train.batch_size:
        raise ConfigError(
            f"split {split!r}: {rows} rows over {max(1, num_workers)} worker(s) is {per_worker} "
            f"per worker, fewer than one batch of train.batch_size={train.batch_size}"
        )


def decode_stage(
    model_spec: dict[str, Any], dataset, train: bool, rows: int | None = None, cache_mb: float = 0
):
    """Add the Ray Data image-decoding stage when rows carry images and the model has a
    transform (OC-CLIP, CLIP); feature rows (DCSM) pass through. Returns the dataset and the
    columns that travel as JSON (None: rows stay raw Arrow). Builds the model once on the
    driver, the only place that knows its transform (pretrained mean/std included).

    With a deterministic transform (no training augmentation) and ``rows`` decoded images
    under ``cache_mb`` MiB, the decoded rows are materialised in Ray's object store: decode
    is paid once per fit, not once per epoch, and no epoch restarts a read + decode pipeline
    the step waits for (on 2 cores that was 10-20% of make run's steps)."""
    from components.models.registry import create_model
    from components.training.decode import IMAGE_COLUMN, nested_columns, with_decoded_images

    schema = dataset.schema()
    if IMAGE_COLUMN not in schema.names:
        return dataset, None
    model = create_model(**model_spec)
    if not hasattr(model, "image_transform"):
        return dataset, None
    decoded = with_decoded_images(dataset, model.image_transform(train=train))
    pixel_mb = 3 * model.backbone.image_size**2 * 4 / 2**20  # float32 CHW per row
    random = train and model.options.get("train_augment", False)
    if rows is not None and not random and rows * pixel_mb <= cache_mb:
        # Blocks in read order, as streaming ingest delivers them (preserve_order below):
        # same config and seed, same data order, same numbers.
        decoded.context.execution_options.preserve_order = True
        decoded = decoded.materialize()
    return decoded, nested_columns(schema)


def _link_or_copy(source: str, destination: str) -> None:
    """Hard-link when both sides share a filesystem: checkpoints are written once and never
    modified, and a second full copy (weights plus optimizer state, ~90 MB at tiny scale) per
    model and seed is what filled CI's disk."""
    import os
    import shutil

    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def export_checkpoint(checkpoint, target: Path) -> Path:
    """Put a Ray Train checkpoint in a plain local folder, replacing an earlier run's."""
    import shutil

    shutil.rmtree(target, ignore_errors=True)
    with checkpoint.as_directory() as directory:
        shutil.copytree(directory, target, copy_function=_link_or_copy)
    return target


def best_checkpoint(result):
    """The checkpoint with the lowest val_loss when validation ran, else the latest."""
    scored = [(c, m) for c, m in (result.best_checkpoints or []) if "val_loss" in m]
    if not scored:
        return result.checkpoint
    return min(scored, key=lambda pair: pair[1]["val_loss"])[0]


def fit(
    model_spec: dict[str, Any],
    train: TrainConfig,
    dataset,
    scaling: ScalingSettings,
    storage_path: str | Path,
    run_name: str,
    mlflow: dict[str, str] | None = None,
    resume: str | None = None,
    val_dataset=None,
    train_rows: int | None = None,
):
    """Train ``model_spec`` on a Ray Dataset of shard rows; returns Ray's Result.

    ``resume``: None starts fresh (an earlier run's folder under the same name is cleared,
    because Ray Train would otherwise silently continue it, even a finished one); "auto"
    continues Ray's own run folder; any other value is a checkpoint directory to start from.
    Worker failures inside one call always restart from the last checkpoint.
    ``val_dataset`` (rows of ``train.val_split``) is needed when ``train.val_every`` > 0;
    then checkpoints are ranked by val_loss and ``best_checkpoint(result)`` picks one.
    ``train_rows``: the row count when the caller knows it cheaply (Parquet footers), so
    the early batch-size check does not run an expensive stage (a parser) to count.
    """
    import ray.train
    from ray.train.torch import TorchTrainer

    from components.training.progress import quiet_library_logs

    quiet_library_logs()
    check_resume_target(resume)
    check_cluster_fits(scaling)
    if train.val_every and val_dataset is None:
        raise ValueError(f"train.val_every={train.val_every} needs the {train.val_split!r} split")
    rows = dataset.count() if train_rows is None else train_rows
    check_rows(rows, "train", train, scaling.num_workers)
    datasets = {}
    datasets["train"], decoded = decode_stage(
        model_spec, dataset, train=True, rows=rows, cache_mb=train.cache_decoded_mb
    )
    if train.val_every:
        datasets["val"], _ = decode_stage(model_spec, val_dataset, train=False)

    # A URI (s3://bucket/run) stays a URI on its own filesystem; a local path becomes absolute.
    filesystem, storage = filesystem_and_path(str(storage_path))
    run_dir = f"{storage.rstrip('/')}/{run_name}"
    if resume is None and filesystem.get_file_info(run_dir).type != FileType.NotFound:
        filesystem.delete_dir(run_dir)
    checkpoint_dir = None if resume in (None, "auto") else resume

    use_gpu = cluster_has_gpus() if scaling.use_gpu is None else scaling.use_gpu
    resources = scaling.per_worker(use_gpu)
    # Same config and seed, same numbers: blocks reach the worker in dataset order, so the
    # seeded local shuffle sees the same stream every run (Ray Data reorders by default).
    ingest = ray.train.DataConfig.default_ingest_options()
    ingest.preserve_order = True
    ranking = {"checkpoint_score_attribute": "val_loss", "checkpoint_score_order": "min"}
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={
            "model": model_spec,
            "train": asdict(train),
            "mlflow": mlflow,
            "resume": checkpoint_dir,
            "decoded": decoded,
            "cpus_per_worker": scaling.cpus_per_worker,
            "progress_bar": sys.stderr.isatty(),
        },
        scaling_config=ray.train.ScalingConfig(
            num_workers=scaling.num_workers,
            use_gpu=use_gpu,
            resources_per_worker=resources if scaling.num_workers else None,
        ),
        run_config=ray.train.RunConfig(
            name=run_name,
            storage_path=storage,
            storage_filesystem=filesystem if is_uri(str(storage_path)) else None,
            failure_config=ray.train.FailureConfig(max_failures=scaling.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(
                num_to_keep=2, **(ranking if train.val_every else {})
            ),
        ),
        datasets=datasets,
        dataset_config=ray.train.DataConfig(datasets_to_split=["train"], execution_options=ingest),
    )
    try:
        return trainer.fit()
    except ray.train.TrainingFailedError as err:
        cause = _user_error(err)
        if cause is None:
            raise
        raise cause from err  # the worker's one-line reason (diverged, bad resume target)


def _user_error(err: BaseException) -> ConfigError | InputError | None:
    """The config or input error a worker raised inside Ray's failure, if that is what
    ended the run; Ray wraps it in a multi-line report the user should not need to read."""
    seen: list[BaseException] = []
    pending: list[BaseException] = [err]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.append(current)
        if isinstance(current, ConfigError | InputError):
            return getattr(current, "cause", None) or current
        pending += [e for e in (current.__cause__, getattr(current, "cause", None)) if e]
        pending += list(getattr(current, "worker_failures", {}).values())
    return None
