"""One factory for every trainable bindkit model: ``create_model(name, backbone, **options)``.

``backbone`` is a built Backbone or its config dict (``Backbone.config``), so a checkpoint's
config.json alone rebuilds the model. Models are a name -> "module:builder" table imported
lazily (as components/parsing/registry.py does for parsers): the registry imports none of its
models, so building a CLIP never imports OC-CLIP or DCSM and no model module can import its
own caller in a circle. A new family adds one line here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from components.models.backbone import Backbone

# name -> "module:callable(backbone, **options)"; a checkpoint's config.json stores the options
MODELS: dict[str, str] = {
    "occlip": "components.models.occlip.occlip:build_occlip",
    "clip": "components.models.clip:CLIP",
    "dcsm": "components.models.dcsm.dcsm:DCSM",
    "negclip": "components.models.negclip:NegCLIP",
    "presence": "components.models.presence:PresenceClassifier",
}


def model_names() -> list[str]:
    return sorted(MODELS)


def model_builder(name: str) -> Callable[..., nn.Module]:
    """The registered builder of ``name``, its module imported now."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(model_names())}")
    module_name, attribute = MODELS[name].split(":")
    return getattr(importlib.import_module(module_name), attribute)


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
    builder = model_builder(name)
    if device == "meta":
        with torch.device("meta"):
            if isinstance(backbone, dict):
                backbone = Backbone.from_config(backbone, load_pretrained=False, device="meta")
            return builder(backbone, **model_options)
    if isinstance(backbone, dict):
        backbone = Backbone.from_config(backbone, load_pretrained=load_pretrained)
    return builder(backbone, **model_options)
