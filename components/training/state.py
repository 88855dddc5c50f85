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

from components.platform.config import InvalidValue, check, check_path
from components.platform.storage import is_uri, join, probe_exists

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


def load_resume_state(directory: Path, source: str, model: nn.Module, optimizer, scheduler) -> int:
    """``load_train_state`` whose errors name ``source`` (the resume path or URI), not the
    temporary folder Ray downloaded it to, which means nothing to the user."""
    from components.models.checkpoint import CheckpointError

    try:
        return load_train_state(directory, model, optimizer, scheduler)
    except CheckpointError as err:
        reason = str(err).replace(str(directory), str(source).rstrip("/"))
        raise CheckpointError(f"resume={source}: {reason}") from err


def check_resume_target(resume: str | None, key: str = "resume") -> None:
    """Refuse, before Ray starts, a resume target that is not a training checkpoint: an
    existing folder (or URI) holding the weights and the optimiser state. "" and None
    start fresh and "auto" continues Ray's own run folder, so neither is checked here."""
    from components.models.checkpoint import WEIGHTS_FILE

    if resume in (None, "", "auto"):
        return
    check_path(key, resume, "dir")
    expected = (WEIGHTS_FILE, TRAIN_STATE)
    missing = [name for name in expected if not _file_exists(key, resume, name)]
    check(
        not missing,
        key,
        resume,
        f"a training checkpoint folder holding {' and '.join(expected)} (a Ray step-* "
        f"checkpoint or an exported out/<model>/checkpoint); missing {', '.join(missing)}",
    )


def _file_exists(key: str, folder: str, name: str) -> bool:
    path = join(folder, name)
    if not is_uri(folder):
        return Path(path).is_file()
    try:
        return probe_exists(path)
    except (OSError, ValueError) as err:  # unreachable or timed out after the folder answered
        raise InvalidValue(key, folder, f"a readable checkpoint folder ({err})") from None
