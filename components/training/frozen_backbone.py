"""The frozen backbone a scorer (DCSM) trains on, and the feature cache it is read through.

The backbone is a bindkit checkpoint's (e.g. train_occlip's mean-pooled CLIP), an open_clip
model with pretrained weights, or, when the checkpoint is missing and a fallback is allowed,
a random-init backbone. Random weights are only reproducible through a file, so they are
saved once under the run's ``out`` (a URI when out= is one) and every Ray worker loads that.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from components.models.backbone import BackboneConfig
from components.platform.outputs import run_lock
from components.platform.storage import child, exists, parent, staged_dir
from components.training.feature_cache import backbone_fingerprint, cache_features


def resolve_backbone(
    backbone: BackboneConfig, fallback: bool, seed: int, out: str
) -> tuple[dict[str, Any], str]:
    """A backbone spec every process rebuilds identically, and a line saying what it is.

    ``fallback``: a missing ``backbone.checkpoint`` means a random-init ``backbone.name``
    (seeded by ``seed``) instead of an error.
    """
    import torch

    from components.models.backbone import build_backbone
    from components.models.checkpoint import save_checkpoint
    from components.models.clip import CLIP

    if backbone.checkpoint:
        path = child(backbone.checkpoint)  # a local folder or a URI
        if exists(str(child(path, "config.json"))):
            return {"checkpoint": str(path)}, f"backbone of checkpoint {path}"
        if not fallback:
            raise FileNotFoundError(
                f"backbone.checkpoint={path}: no bindkit checkpoint there "
                "(run pipelines/train_occlip.py model=clip, or fallback=true)"
            )
        note = f"random-init {backbone.name!r} (fallback: {path} missing)"
    else:
        note = (
            f"{backbone.name!r} pretrained={backbone.pretrained}"
            if backbone.pretrained
            else f"random-init {backbone.name!r} (no backbone.checkpoint given)"
        )
    spec = backbone.spec()
    if backbone.pretrained:
        return build_backbone(**spec).config, note
    # Random weights are only reproducible through a file: save them once, reuse after.
    saved = child(out, "backbone", f"{backbone.name}-{backbone.image_size}-s{seed}")
    if not exists(str(child(saved, "config.json"))):
        torch.manual_seed(seed)
        with staged_dir(saved) as local:
            save_checkpoint(CLIP(build_backbone(**spec)), local)
    return {"checkpoint": str(saved)}, note


def backbone_config(spec: dict[str, Any]) -> dict[str, Any]:
    """The Backbone.config inside a spec (read from a checkpoint's config.json if needed)."""
    from components.models.checkpoint import read_checkpoint_config

    if "checkpoint" in spec:
        return read_checkpoint_config(spec["checkpoint"])["config"]["backbone"]
    return dict(spec)


def cached_features(
    spec: dict[str, Any],
    split_dir: str | Path,
    root: str | Path,
    context_length: int,
    num_actors: int,
    batch_size: int,
) -> tuple[str | Path, dict[str, Any]]:
    """The dense feature cache of ``split_dir`` under ``backbone spec`` and text context
    length, computed once (components/training/feature_cache.py): its folder under ``root``
    (a URI under a URI) and its card (rows, seconds)."""
    name = backbone_config(spec)["name"].replace("/", "_")
    features = child(root, f"{name}-{backbone_fingerprint(spec)}-L{context_length}")
    # caches are shared by runs with other out= folders; a rebuild replaces the folder
    with run_lock(parent(str(features))):
        card = cache_features(
            split_dir,
            features,
            spec,
            context_length,
            num_actors=num_actors,
            batch_size=batch_size,
        )
    return features, card
