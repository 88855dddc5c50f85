"""One ``load_backbone`` for every entry point: a Backbone from a config block or a plain spec.

A backbone is named three ways, and each loads the same way wherever it is named (DCSM's
feature cache, probes, pipelines): a bindkit checkpoint (a trained model's own backbone,
weights included), an open_clip name with a pretrained tag or local weights file, or a
small config for tests. The spec is plain data so it travels to Ray actors unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from components.models.backbone import Backbone, BackboneConfig
from components.models.checkpoint import load_checkpoint


def load_backbone(source: BackboneConfig | Mapping[str, Any]) -> Backbone:
    """A Backbone from a ``BackboneConfig``, ``{"checkpoint": dir}`` or ``Backbone`` keyword
    arguments (``{"name": ..., "pretrained": ...}`` or a ``Backbone.config`` dict)."""
    spec = dict(source.source() if isinstance(source, BackboneConfig) else source)
    checkpoint = spec.pop("checkpoint", None)
    if checkpoint:
        model = load_checkpoint(checkpoint)
        if not hasattr(model, "backbone"):
            raise ValueError(f"checkpoint {checkpoint}: model {model.name!r} has no backbone")
        return model.backbone
    if "name" not in spec:
        raise ValueError(f"backbone spec {spec}: needs 'checkpoint' or 'name'")
    return Backbone(**spec)
