"""Training progress a person can read: one line per log interval, or a bar in a terminal.

The line follows open_clip_train's (``Train Epoch: 0 [4096/100000 (4%)] Loss: ...``):

    occlip step 40/400 (10%) epoch 1 | loss 3.412 (itc 2.301 rel 1.111) | lr 1.00e-03 |
    84.2 samples/s | data 1.3% | ETA 4m12s

Job logs get the plain lines; a driver attached to a terminal gets a bar (Ray's tqdm, which
draws worker bars on the driver) with the same numbers beside it. ``quiet_library_logs``
silences, at their loggers, messages that read as problems in a healthy run.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

LOSS_PARTS = ("itc", "rel")  # shown in brackets after the loss when a model reports them


def format_duration(seconds: float) -> str:
    """4m12s, 1h03m, 9s: short enough for a log line."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def format_line(name: str, step: int, total: int, epoch: int, metrics: dict[str, float]) -> str:
    """One progress line from the loop's metrics (loss, parts, lr, samples_per_second, ...)."""
    parts = " ".join(f"{k} {metrics[k]:.3f}" for k in LOSS_PARTS if k in metrics)
    loss = f"loss {metrics['loss']:.3f}" + (f" ({parts})" if parts else "")
    fields = [
        f"{name} step {step}/{total} ({100 * step / max(1, total):.0f}%) epoch {epoch}",
        loss,
        f"lr {metrics['lr']:.2e}",
        f"{metrics['samples_per_second']:.1f} samples/s",
        f"data {100 * metrics['data_wait_fraction']:.1f}%",
        f"ETA {format_duration(metrics['eta_seconds'])}",
    ]
    if "val_loss" in metrics:
        fields.insert(2, f"val_loss {metrics['val_loss']:.3f}")
    return " | ".join(fields)


class Progress:
    """Rank 0's progress display; other ranks stay silent."""

    def __init__(self, name: str, total: int, start: int, rank: int, bar: bool) -> None:
        self.name, self.total, self.start = name, total, start
        self.enabled = rank == 0
        self.bar = None
        if self.enabled and bar:
            from ray.experimental.tqdm_ray import tqdm

            self.bar = tqdm(total=total, desc=name)
            self.bar.update(start)
        self.started = time.perf_counter()

    def rates(self, step: int, samples_per_step: int) -> dict[str, float]:
        """samples/s and ETA from the wall time since this process started training."""
        elapsed = time.perf_counter() - self.started
        done = max(1, step - self.start)
        per_step = elapsed / done
        return {
            "samples_per_second": done * samples_per_step / max(elapsed, 1e-9),
            "eta_seconds": per_step * (self.total - step),
        }

    def advance(self, step: int) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def log(self, step: int, epoch: int, metrics: dict[str, Any]) -> None:
        if not self.enabled:
            return
        line = format_line(self.name, step, self.total, epoch, metrics)
        if self.bar is not None:
            self.bar.set_description(line)
        else:
            # not print(): Ray Train patches it in the worker to tee to stdout *and* the root
            # logger, so every line reached the job log twice
            sys.stdout.write(f"{line}\n")
            sys.stdout.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _DropMessages(logging.Filter):
    """Drops open_clip's INFO chatter and its 'No pretrained weights loaded' warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        from_open_clip = "open_clip" in record.pathname
        if from_open_clip and record.levelno < logging.WARNING:
            return False
        # Random init is what the config asked for (init=scratch); the warning names the
        # base architecture (ViT-B-16) even for the tiny config built on it.
        return not (from_open_clip and record.getMessage().startswith("No pretrained weights"))


def quiet_library_logs() -> None:
    """Install the filter on the root logger (open_clip logs through it), and keep Ray
    Train's per-report INFO lines ("Reporting training result 2: TrainingReport(...)",
    "Checkpoint successfully created") out of the log, which has our progress line
    instead; its warnings and errors still show. Idempotent."""
    root = logging.getLogger()
    if not any(isinstance(f, _DropMessages) for f in root.filters):
        root.addFilter(_DropMessages())
    from ray.train.v2._internal.execution import context, storage

    for name in (context.__file__, storage.__name__):  # context's logger is named by path
        logging.getLogger(name).setLevel(logging.WARNING)
