"""The one Ray Train loop: any bindkit model that can ``collate`` rows and return a ``loss``.

OC-CLIP, CLIP and DCSM differ only in the model object; this loop streams shard rows from
Ray Data (images arrive decoded: components/training/decode.py), runs AMP (bf16) on GPU,
accumulates gradients over ``accum_steps`` micro-batches, clips them, follows warm-up +
cosine, validates every ``val_every`` steps on the val split, reports and checkpoints (rank 0
writes, every rank reports: ``report`` is a barrier), resumes from Ray's latest checkpoint or
an explicit path, prints one progress line per interval and logs to MLflow from rank 0.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from components.platform.config import ConfigError
from components.training.decode import batch_rows
from components.training.optim import build_optimizer, warmup_cosine
from components.training.progress import Progress, quiet_library_logs
from components.training.state import load_resume_state, save_train_state


@dataclass
class TrainConfig:
    """Optimisation and run-length knobs shared by every model."""

    steps: int = 600  # optimiser steps
    batch_size: int = 64  # rows per micro-batch per worker
    accum_steps: int = 1  # micro-batches per optimiser step (gradient accumulation)
    backbone_lr: float = 5e-4  # peak learning rate of the backbone towers
    head_lr: float = 1e-3  # peak learning rate of new modules (binding, score heads)
    weight_decay: float = 0.1  # AdamW decay (none on norms, biases, scales)
    warmup_steps: int = 50  # linear warm-up steps before the cosine decay
    lr_floor: float = 0.0  # cosine decays to lr_floor x the base LR; 1.0 = constant
    beta2: float = 0.98  # AdamW (CLIP's); Adam's default 0.999 for small heads from scratch
    eps: float = 1e-6  # AdamW epsilon
    grad_clip: float = 1.0  # max global gradient norm
    checkpoint_every: int = 200  # steps between checkpoints (and at the last step)
    log_every: int = 20  # steps between progress lines and MLflow metrics
    val_every: int = 0  # validate on val_split every N steps, checkpoint there, keep the best
    val_split: str = "val"  # the split val_every reads (selection on val only, never test)
    shuffle_buffer: int = 512  # rows in the worker's seeded local shuffle; 0 = off
    prefetch_batches: int = 4  # batches the worker's iterator keeps ready ahead of the step
    cache_decoded_mb: int = 1024  # decode once, keep in Ray's object store if under (MiB); 0 = off
    torch_threads: int = 0  # intra-op threads in the worker; 0 = its CPUs (cpus_per_worker)
    amp: bool = True  # bf16 autocast, only where CUDA is present
    compile: bool = False  # torch.compile the model (worth it on GPU for long runs)
    seed: int = 0  # model init, data shuffle and negatives
    # Fault drill: the rank-0 worker process exits at this step unless ``drill_marker`` exists
    # (it writes the marker first), so one real worker death and restart happens. 0 = off.
    drill_exit_step: int = 0  # fault drill: step at which rank 0 exits once; 0 = off
    drill_marker: str = ""  # fault drill: file written before the exit

    def __post_init__(self) -> None:
        for key in ("steps", "batch_size", "accum_steps", "checkpoint_every", "log_every"):
            if getattr(self, key) < 1:
                raise ValueError(f"train.{key} must be >= 1, got {getattr(self, key)}")
        for key in (
            "val_every",
            "shuffle_buffer",
            "prefetch_batches",
            "torch_threads",
            "cache_decoded_mb",
        ):
            if getattr(self, key) < 0:
                raise ValueError(f"train.{key} must be >= 0, got {getattr(self, key)}")


class NonFiniteLoss(ConfigError):
    """Training diverged: a loss or gradient norm went NaN or infinite (a learning rate too
    high for the model, or broken inputs). A config fault the user fixes, told in one line."""


def check_finite(step: int, loss: torch.Tensor, grad_norm: torch.Tensor) -> None:
    """Stop at the first optimiser step whose loss or gradient norm is not finite, before
    the update: AdamW would write NaN into every weight, and each later number (the loss
    curve, the checkpoint, its accuracies) would be computed from NaN."""
    if bool(torch.isfinite(loss) & torch.isfinite(grad_norm)):  # one device sync per step
        return
    raise NonFiniteLoss(
        f"training diverged at step {step}: loss {float(loss):g}, gradient norm "
        f"{float(grad_norm):g}; the run stopped before this step's update (lower "
        "train.backbone_lr / train.head_lr, or check the inputs)"
    )


class LossModule(nn.Module):
    """Routes ``forward`` to ``model.loss`` so DDP's gradient hooks see the loss pass."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        return self.model.loss(batch)


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Pinned host memory + non-blocking copies on GPU, so the copy overlaps the step."""
    if device.type != "cuda":
        return batch
    return {
        k: v.pin_memory().to(device, non_blocking=True) if torch.is_tensor(v) else v
        for k, v in batch.items()
    }


def _collate(model: nn.Module, batch, json_columns: list[str]) -> dict[str, Any]:
    """A numpy batch with decoded pixels, or an Arrow batch of raw rows (DCSM's features)."""
    if isinstance(batch, dict):
        return model.collate(batch_rows(batch, json_columns))
    return model.collate(batch.to_pylist())


def _rows_in(batch) -> int:
    return len(next(iter(batch.values()))) if isinstance(batch, dict) else batch.num_rows


def epoch_batches(
    shard, model: nn.Module, config: TrainConfig, decoded: list[str] | None, split: str
):
    """Endless stream of (epoch, collated batch); each pass over the shard is one epoch.

    Only full batches train (a short last one is skipped). An epoch without a full batch
    raises, naming the split, instead of re-reading the shard forever.
    """
    epoch = 0
    while True:
        rows = batches = 0
        for batch in _iterate(shard, config, decoded, seed=config.seed + epoch):
            rows += _rows_in(batch)
            if _rows_in(batch) == config.batch_size:
                batches += 1
                yield epoch, _collate(model, batch, decoded or [])
        if batches == 0:
            raise ValueError(
                f"split {split!r}: this worker's shard has {rows} rows, fewer than one batch "
                f"of train.batch_size={config.batch_size}; lower the batch size or add rows"
            )
        epoch += 1


def _iterate(shard, config: TrainConfig, decoded: list[str] | None, seed: int | None):
    """Batches as numpy columns when images arrive decoded, else Arrow rows; shuffled
    locally with ``seed`` (None: in order, for validation)."""
    return shard.iter_batches(
        batch_size=config.batch_size,
        batch_format="numpy" if decoded is not None else "pyarrow",
        drop_last=False,
        local_shuffle_buffer_size=(config.shuffle_buffer or None) if seed is not None else None,
        local_shuffle_seed=seed,
        prefetch_batches=config.prefetch_batches,
    )


def validation_loss(
    model: nn.Module, shard, config: TrainConfig, decoded: list[str] | None, device
) -> float:
    """Mean loss over the whole val shard, eval mode, fixed RNG (OC-CLIP draws negatives)."""
    was_training = model.training
    model.eval()
    total = count = 0.0
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        for batch in _iterate(shard, config, decoded, seed=None):
            collated = to_device(_collate(model, batch, decoded or []), device)
            size = len(next(iter(collated.values())))
            if size < 2:  # a contrastive loss needs a negative in the batch
                continue
            loss, _ = model.loss(collated)
            total, count = total + float(loss) * size, count + size
    model.train(was_training)
    if count == 0:
        raise ValueError(f"split {config.val_split!r}: no validation batch of >= 2 rows")
    return total / count


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    """Ray Train entry: build the model, resume if asked, train, report and checkpoint."""
    import ray.train
    import ray.train.torch

    from components.models.registry import create_model

    quiet_library_logs()
    config = TrainConfig(**loop_config["train"])
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    torch.set_num_threads(config.torch_threads or int(loop_config.get("cpus_per_worker", 1)) or 1)
    torch.manual_seed(config.seed + rank)
    device = ray.train.torch.get_device()

    model = create_model(**loop_config["model"])
    optimizer = build_optimizer(
        model, config.backbone_lr, config.head_lr, config.weight_decay, config.beta2, config.eps
    )
    scheduler = warmup_cosine(optimizer, config.warmup_steps, config.steps, config.lr_floor)
    step = 0
    resume = ray.train.get_checkpoint()
    resume_dir = (
        resume.as_directory()
        if resume
        else ray.train.Checkpoint(loop_config["resume"]).as_directory()  # a path or a URI
        if loop_config.get("resume")
        else contextlib.nullcontext(None)
    )
    source = resume.path if resume else loop_config.get("resume")
    with resume_dir as directory:
        if directory:
            step = load_resume_state(Path(directory), source, model, optimizer, scheduler)
    start_step = step
    module = LossModule(model)
    # Compiled inside DDP, so DDP's no_sync (gradient accumulation) stays reachable.
    wrapped = ray.train.torch.prepare_model(torch.compile(module) if config.compile else module)

    name = loop_config["model"]["name"]
    logger = _MlflowLogger(loop_config.get("mlflow"), rank, resumed=start_step > 0)
    progress = Progress(
        name, config.steps, start_step, rank, loop_config.get("progress_bar", False)
    )
    use_amp = config.amp and device.type == "cuda"
    decoded = loop_config.get("decoded")  # JSON columns of decoded rows; None: raw Arrow rows
    batches = epoch_batches(ray.train.get_dataset_shard("train"), model, config, decoded, "train")
    val_shard = ray.train.get_dataset_shard("val") if config.val_every else None
    samples_per_step = config.batch_size * config.accum_steps * world
    wait_seconds = compute_seconds = startup_seconds = 0.0
    epoch = 0
    while step < config.steps:
        optimizer.zero_grad(set_to_none=True)
        micro_losses = []
        for micro in range(config.accum_steps):
            tick = time.perf_counter()
            epoch, batch = next(batches)
            batch = to_device(batch, device)
            tock = time.perf_counter()
            # DDP all-reduces gradients only on the last micro-batch of a step.
            last = micro == config.accum_steps - 1
            sync = contextlib.nullcontext() if last or world == 1 else wrapped.no_sync()
            with sync:
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                    loss, parts = wrapped(batch)
                (loss / config.accum_steps).backward()  # outside autocast, as torch advises
            micro_losses.append(loss.detach().float())
            wait_seconds += tock - tick
            compute_seconds += time.perf_counter() - tock
        tock = time.perf_counter()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        check_finite(step + 1, torch.stack(micro_losses).mean(), grad_norm)
        optimizer.step()
        scheduler.step()
        step += 1
        compute_seconds += time.perf_counter() - tock
        if step == start_step + 1:  # the first batch pays the data pipeline's start-up, once
            startup_seconds, wait_seconds, compute_seconds = wait_seconds, 0.0, 0.0
        progress.advance(step)
        _maybe_drill_exit(config, step, rank)

        validate = bool(config.val_every) and (step % config.val_every == 0 or step == config.steps)
        # With validation on, checkpoints are the validated steps: each carries the val_loss
        # Ray ranks them by (best kept, plus the latest for resume).
        is_checkpoint = validate or (
            not config.val_every and (step % config.checkpoint_every == 0 or step == config.steps)
        )
        if step % config.log_every == 0 or is_checkpoint:
            metrics = {
                "step": step,
                "loss": float(loss.detach()),
                "grad_norm": float(grad_norm),
                "lr": scheduler.get_last_lr()[0],
                "data_wait_fraction": wait_seconds / max(1e-9, wait_seconds + compute_seconds),
                # steady state: the first step of this process is start-up, reported apart
                "seconds_per_step": (wait_seconds + compute_seconds)
                / max(1, step - start_step - 1),
                "startup_seconds": startup_seconds,
                **{k: float(v) for k, v in parts.items()},
                **progress.rates(step, samples_per_step),
            }
            if validate:
                metrics["val_loss"] = validation_loss(model, val_shard, config, decoded, device)
            progress.log(step, epoch, metrics)
            logger.log(metrics, step)
            # start_step is where this process resumed: Ray's result, not an MLflow curve.
            _report({**metrics, "start_step": start_step}, model, optimizer, scheduler, step, rank,
                    is_checkpoint)  # fmt: skip
    if step == start_step:  # nothing left to train (a finished run resumed): still hand back
        _report({"step": step, "start_step": start_step}, model, optimizer, scheduler, step, rank,
                True)  # fmt: skip
    progress.close()


def _maybe_drill_exit(config: TrainConfig, step: int, rank: int) -> None:
    marker = Path(config.drill_marker) if config.drill_marker else None
    if rank == 0 and step == config.drill_exit_step and marker and not marker.exists():
        marker.write_text(str(step))
        # Reports are collected by the controller asynchronously; wait until the last
        # checkpoint is surely registered, as when a failure strikes mid-interval.
        time.sleep(5)
        os._exit(1)  # a hard death, as when a node is lost: no cleanup, no report


def _report(metrics, model, optimizer, scheduler, step, rank, with_checkpoint) -> None:
    """Every rank reports (a barrier); rank 0 attaches the checkpoint directory."""
    import ray.train

    if not with_checkpoint:
        ray.train.report(metrics)
        return
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = None
        if rank == 0:
            save_train_state(Path(tmp), model, optimizer, scheduler, step)
            checkpoint = ray.train.Checkpoint.from_directory(tmp)
        ray.train.report(metrics, checkpoint=checkpoint, checkpoint_dir_name=f"step-{step:07d}")


class _MlflowLogger:
    """Rank-0 metric logging into the run the driver opened (no global active run)."""

    def __init__(self, mlflow_config: dict[str, str] | None, rank: int, resumed: bool = False):
        self.client = None
        self.logged_through = 0
        if mlflow_config and rank == 0:
            from mlflow.tracking import MlflowClient

            self.client = MlflowClient(tracking_uri=mlflow_config["tracking_uri"])
            self.run_id = mlflow_config["run_id"]
            self.prefix = mlflow_config.get("prefix", "")
            if resumed:
                # A process that died after logging a step but before Ray registered that
                # step's checkpoint logged it already; after the resume it is trained again
                # and must not appear twice (MLflow keeps the first value).
                history = self.client.get_metric_history(self.run_id, f"{self.prefix}loss")
                self.logged_through = max((m.step for m in history), default=0)

    def log(self, metrics: dict[str, float], step: int) -> None:
        """Every metric but the step itself, on the training-step axis; each step once."""
        if self.client is None or step <= self.logged_through:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(
            self.run_id,
            metrics=[
                Metric(f"{self.prefix}{k}", float(v), now, step)
                for k, v in metrics.items()
                if k != "step"
            ],
        )
