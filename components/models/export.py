"""Checkpoints users can take elsewhere: the backbone as plain open_clip, the heads beside it.

``export_model(model, DIR)`` writes
- ``open_clip_model.safetensors``: the backbone's open_clip state dict, so
  ``open_clip.create_model(name, pretrained=FILE)`` loads it for a stock architecture, and
- ``open_clip_config.json`` ({"model_cfg", "preprocess_cfg"}), so
  ``open_clip.create_model("local-dir:DIR")`` rebuilds any architecture (small configs and
  overrides included) with no bindkit installed;
- for models with new modules (OC-CLIP's binding module and score heads, DCSM's scorer):
  ``heads.safetensors`` (every tensor outside the backbone) and ``heads_config.json``
  ({"name", "config"}), which ``load_export`` turns back into the bindkit model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import open_clip
from safetensors.torch import load_file, save_file
from torch import nn

from components.models.backbone import merge_config
from components.models.registry import create_model

OPEN_CLIP_WEIGHTS = "open_clip_model.safetensors"
OPEN_CLIP_CONFIG = "open_clip_config.json"
HEADS_WEIGHTS = "heads.safetensors"
HEADS_CONFIG = "heads_config.json"


def open_clip_model_cfg(backbone) -> dict[str, Any]:
    """The full open_clip model config the backbone was built from (overrides applied)."""
    cfg = merge_config(
        open_clip.get_model_config(backbone.open_clip_name) or {}, backbone.open_clip_overrides
    )
    if backbone.config.get("force_quick_gelu"):
        cfg["quick_gelu"] = True
    return cfg


def export_backbone(backbone, directory: str | Path) -> Path:
    """Write the open_clip weights + config of ``backbone`` into ``directory``; return the file."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in backbone.model.state_dict().items()}
    path = directory / OPEN_CLIP_WEIGHTS
    save_file(state, str(path))
    preprocess = {
        k: list(v) if isinstance(v, tuple) else v for k, v in backbone.preprocess_cfg.items()
    }
    payload = {"model_cfg": open_clip_model_cfg(backbone), "preprocess_cfg": preprocess}
    (directory / OPEN_CLIP_CONFIG).write_text(json.dumps(payload, indent=2, sort_keys=True))
    return path


def export_model(model: nn.Module, directory: str | Path) -> Path:
    """Backbone as open_clip files; a model's new modules as heads.safetensors + config."""
    model = getattr(model, "module", model)
    directory = Path(directory)
    backbone = getattr(model, "backbone", model)
    export_backbone(backbone, directory)
    heads = {
        k: v.detach().contiguous().cpu()
        for k, v in model.state_dict().items()
        if not k.startswith("backbone.")
    }
    if heads and hasattr(model, "config"):
        save_file(heads, str(directory / HEADS_WEIGHTS))
        payload = {"name": model.name, "config": model.config}
        (directory / HEADS_CONFIG).write_text(json.dumps(payload, indent=2, sort_keys=True))
    return directory


def load_export(directory: str | Path) -> nn.Module:
    """The bindkit model of an export: its backbone from the open_clip file, heads on top."""
    directory = Path(directory)
    payload = json.loads((directory / HEADS_CONFIG).read_text())
    options = dict(payload["config"])
    backbone = dict(options.pop("backbone"))
    backbone["pretrained"] = str(directory / OPEN_CLIP_WEIGHTS)
    model = create_model(payload["name"], backbone, **options)
    missing, unexpected = model.load_state_dict(
        load_file(str(directory / HEADS_WEIGHTS)), strict=False
    )
    unexpected = sorted(unexpected)
    missing = sorted(k for k in missing if not k.startswith("backbone."))
    if missing or unexpected:
        raise ValueError(
            f"{directory / HEADS_WEIGHTS}: missing keys {missing[:5]}, unexpected keys {unexpected[:5]}"
        )
    return model
