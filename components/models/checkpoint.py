"""Checkpoint = a directory with config.json and model.safetensors (DESIGN.md, Checkpoint).

config.json holds {"name": model.name, "config": model.config, "extra": {...}}: enough for
``registry.create_model`` to rebuild the model without its pretrained weights, which the
state dict then replaces.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import load_model, save_model
from torch import nn

from components.models.registry import create_model

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def save_checkpoint(
    model: nn.Module, directory: str | Path, extra: dict[str, Any] | None = None
) -> Path:
    """Write config.json and model.safetensors into ``directory`` (created); return it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model = getattr(model, "module", model)  # unwrap DDP
    payload = {"name": model.name, "config": model.config, "extra": extra or {}}
    (directory / CONFIG_FILE).write_text(json.dumps(payload, indent=2, sort_keys=True))
    save_model(model, str(directory / WEIGHTS_FILE))
    return directory


def read_checkpoint_config(directory: str | Path) -> dict[str, Any]:
    """The parsed config.json of a checkpoint directory."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a bindkit checkpoint (no {CONFIG_FILE})")
    return json.loads(path.read_text())


def load_checkpoint(directory: str | Path, map_location: str = "cpu") -> nn.Module:
    """Rebuild the model from config.json and load model.safetensors into it (strict)."""
    payload = read_checkpoint_config(directory)
    options = dict(payload["config"])
    backbone = options.pop("backbone")
    model = create_model(payload["name"], backbone, load_pretrained=False, **options)
    weights = Path(directory) / WEIGHTS_FILE
    missing, unexpected = load_model(model, str(weights), strict=False, device=str(map_location))
    if missing or unexpected:
        raise RuntimeError(
            f"{weights}: missing keys {missing[:5]}, unexpected keys {unexpected[:5]}"
        )
    return model.to(map_location)
