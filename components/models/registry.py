"""One factory for every trainable bindkit model: ``create_model(name, backbone, **options)``.

``backbone`` is a built Backbone or its config dict (``Backbone.config``), so a checkpoint's
config.json alone rebuilds the model. Other model families register with ``register_model``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from components.models.backbone import Backbone

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str, builder: Callable[..., nn.Module]) -> None:
    """Make ``create_model(name, backbone, **options)`` call ``builder(backbone, **options)``."""
    _BUILDERS[name] = builder


def _builtin(name: str) -> Callable[..., nn.Module] | None:
    if name == "occlip":
        from components.models.occlip import OCCLIP

        return OCCLIP
    if name == "clip":
        from components.models.clip import CLIP

        return CLIP
    if name == "dcsm":
        from components.models.dcsm import DCSM

        return DCSM
    if name == "negclip":
        from components.models.negclip import NegCLIP

        return NegCLIP
    if name == "presence":
        from components.models.presence import PresenceClassifier

        return PresenceClassifier
    return None


def model_names() -> list[str]:
    return sorted({"occlip", "clip", "dcsm", "negclip", "presence", *_BUILDERS})


def create_model(
    name: str,
    backbone: Backbone | dict[str, Any],
    load_pretrained: bool = True,
    device: str = "cpu",
    **model_options: Any,
) -> nn.Module:
    """Build a registered model on a Backbone (or a Backbone config dict).

    ``load_pretrained=False`` skips the backbone's pretrained weights when a state dict is
    about to be loaded over them (checkpoint.load_checkpoint); ``device="meta"`` builds a
    shape-only skeleton that allocates nothing.
    """
    builder = _BUILDERS.get(name) or _builtin(name)
    if builder is None:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(model_names())}")
    if device == "meta":
        with torch.device("meta"):
            if isinstance(backbone, dict):
                backbone = Backbone.from_config(backbone, load_pretrained=False, device="meta")
            return builder(backbone, **model_options)
    if isinstance(backbone, dict):
        backbone = Backbone.from_config(backbone, load_pretrained=load_pretrained)
    return builder(backbone, **model_options)
