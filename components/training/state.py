"""Training state on disk: the model checkpoint plus optimiser/schedule/step for resume.

The model part is the project's Checkpoint contract (config.json + model.safetensors), so
a training checkpoint is also a loadable model; optimiser state sits beside it in a torch
file that loads with ``weights_only=True``.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn

TRAIN_STATE = "train_state.pt"


def save_train_state(directory: Path, model: nn.Module, optimizer, scheduler, step: int) -> None:
    from components.models.checkpoint import save_checkpoint

    save_checkpoint(model, directory, extra={"step": step})
    torch.save(
        {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "step": step},
        directory / TRAIN_STATE,
    )


def load_train_state(directory: Path, model: nn.Module, optimizer, scheduler) -> int:
    """Restore weights and optimiser in place; returns the step to continue from.

    Weights are checked against the model's names and shapes first (checkpoint.py), and
    every failure names the file it comes from.
    """
    from safetensors.torch import load_model

    from components.models.checkpoint import WEIGHTS_FILE, CheckpointError, check_weights_fit

    directory = Path(directory)
    weights = directory / WEIGHTS_FILE
    check_weights_fit(model, weights)
    load_model(model, str(weights), strict=True)
    path = directory / TRAIN_STATE
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        return int(state["step"])
    except (OSError, RuntimeError, KeyError, ValueError, TypeError, pickle.UnpicklingError) as err:
        raise CheckpointError(f"{path}: not a usable training state ({err!r})") from err
