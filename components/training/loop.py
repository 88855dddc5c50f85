"""The one Ray Train loop: any bindkit model that can ``collate`` rows and return a ``loss``.

OC-CLIP, CLIP and DCSM differ only in the model object; this loop streams shard rows from
Ray Data, runs AMP (bf16) on GPU, clips gradients, follows warm-up + cosine, reports and
checkpoints every N steps (rank 0 writes, every rank reports: ``report`` is a barrier),
resumes from Ray's latest checkpoint or an explicit path, and logs to MLflow from rank 0.
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

from components.training.optim import build_optimizer, warmup_cosine
from components.training.state import load_train_state, save_train_state


@dataclass
class TrainConfig:
    """Optimisation and run-length knobs shared by every model."""

    steps: int = 600
    batch_size: int = 64
    backbone_lr: float = 5e-4
    head_lr: float = 1e-3
    weight_decay: float = 0.1
    warmup_steps: int = 50
    lr_floor: float = 0.0  # cosine decays to lr_floor x the base LR; 1.0 = constant
    beta2: float = 0.98  # AdamW (CLIP's); Adam's default 0.999 for small heads from scratch
    eps: float = 1e-6
    grad_clip: float = 1.0
    checkpoint_every: int = 200
    log_every: int = 20
    shuffle_buffer: int = 512
    amp: bool = True  # bf16 autocast, only where CUDA is present
    seed: int = 0
    # Fault drill: the rank-0 worker process exits at this step unless ``drill_marker`` exists
    # (it writes the marker first), so one real worker death and restart happens. 0 = off.
    drill_exit_step: int = 0
    drill_marker: str = ""


class LossModule(nn.Module):
    """Routes ``forward`` to ``model.loss`` so DDP's gradient hooks see the loss pass."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        return self.model.loss(batch)


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {
        k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()
    }


def _batches(shard, model: nn.Module, config: TrainConfig, epoch: int):
    """Endless stream of collated batches; each pass over the shard is one epoch."""
    while True:
        for table in shard.iter_batches(
            batch_size=config.batch_size,
            batch_format="pyarrow",
            drop_last=True,
            local_shuffle_buffer_size=config.shuffle_buffer or None,
            local_shuffle_seed=config.seed + epoch,
            prefetch_batches=2,
        ):
            yield model.collate(table.to_pylist())
        epoch += 1


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    """Ray Train entry: build the model, resume if asked, train, report and checkpoint."""
    import ray.train
    import ray.train.torch

    from components.models.registry import create_model

    config = TrainConfig(**loop_config["train"])
    context = ray.train.get_context()
    rank = context.get_world_rank()
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
        resume.as_directory() if resume else contextlib.nullcontext(loop_config.get("resume"))
    )
    with resume_dir as directory:
        if directory:
            step = load_train_state(Path(directory), model, optimizer, scheduler)
    start_step = step
    wrapped = ray.train.torch.prepare_model(LossModule(model))

    logger = _MlflowLogger(loop_config.get("mlflow"), rank)
    use_amp = config.amp and device.type == "cuda"
    shard = ray.train.get_dataset_shard("train")
    batches = _batches(shard, model, config, epoch=step)
    wait_seconds = compute_seconds = 0.0
    while step < config.steps:
        tick = time.perf_counter()
        batch = _to_device(next(batches), device)
        tock = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            loss, parts = wrapped(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        scheduler.step()
        step += 1
        _maybe_drill_exit(config, step, rank)
        wait_seconds += tock - tick
        compute_seconds += time.perf_counter() - tock

        is_checkpoint = step % config.checkpoint_every == 0 or step == config.steps
        if step % config.log_every == 0 or is_checkpoint:
            metrics = {
                "step": step,
                "start_step": start_step,
                "loss": float(loss.detach()),
                "grad_norm": float(grad_norm),
                "lr": scheduler.get_last_lr()[0],
                "data_wait_fraction": wait_seconds / max(1e-9, wait_seconds + compute_seconds),
                "seconds_per_step": (wait_seconds + compute_seconds) / max(1, step - start_step),
                **{k: float(v) for k, v in parts.items()},
            }
            logger.log(metrics, step)
            _report(metrics, model, optimizer, scheduler, step, rank, is_checkpoint)


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

    def __init__(self, mlflow_config: dict[str, str] | None, rank: int):
        self.client = None
        if mlflow_config and rank == 0:
            from mlflow.tracking import MlflowClient

            self.client = MlflowClient(tracking_uri=mlflow_config["tracking_uri"])
            self.run_id = mlflow_config["run_id"]
            self.prefix = mlflow_config.get("prefix", "")

    def log(self, metrics: dict[str, float], step: int) -> None:
        if self.client is None:
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
