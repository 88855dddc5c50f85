"""Projected image tokens from every kind of open_clip image tower, or a clear refusal.

Contract (what OC-CLIP and DCSM read): ``image_tokens(images) -> (pooled (B, D), tokens
(B, 1 + N, D))``; position 0 is one prefix token, then N spatial tokens, all in the joint
embedding space of width D, and at the last layer ``pooled`` is the tower's own output
(== ``encode_image``).

- open_clip VisionTransformer: prefix = the projected CLS token, patches projected by
  ``visual.proj`` after ``ln_post`` (any block).
- timm towers (ViT, EVA, SigLIP, ConvNeXt, ...): the trunk's final feature map, each
  spatial token passed on its own through the tower's head (timm ``forward_head`` then
  open_clip's projection). Pooling a single token is the identity for avg/token pooling and
  the value path for attention pooling ("map", SigLIP), the dense reading MaskCLIP uses.
  Prefix = the pooled embedding.
- ModifiedResNet (RN50...): the layer4 map through the attention pool's value and output
  projections (the same dense reading); prefix = the attention-pooled embedding.
"""

from __future__ import annotations

import torch
from torch import nn


class UnsupportedBackbone(ValueError):
    """A model whose towers cannot give the tokens bindkit needs; says which part is missing."""


def tower_kind(visual: nn.Module) -> str:
    """Which token reader applies: "vit", "timm" or "resnet" (refuses any other tower)."""
    name = type(visual).__name__
    if hasattr(visual, "conv1") and hasattr(visual, "transformer"):
        return "vit"
    if name == "TimmModel":
        if "pool" in getattr(visual, "head", {}):
            raise UnsupportedBackbone(
                "its timm image tower pools with open_clip's abs_attn/rot_attn head, which "
                "has no per-token reading"
            )
        return "timm"
    if name == "ModifiedResNet":
        return "resnet"
    raise UnsupportedBackbone(f"image tower {name} has no token reader")


def image_width(visual: nn.Module) -> int:
    """Channel width of the tokens before projection."""
    kind = tower_kind(visual)
    if kind == "vit":
        return int(visual.transformer.width)
    if kind == "timm":
        return int(visual.trunk.num_features)
    return int(visual.attnpool.c_proj.in_features)


def _vit_tokens(visual: nn.Module, images: torch.Tensor, layer: int):
    last = layer in (-1, len(visual.transformer.resblocks) - 1)
    out = visual.forward_intermediates(
        images,
        indices=[layer],
        stop_early=not last,
        normalize_intermediates=True,
        intermediates_only=not last,
        output_fmt="NLC",
        output_extra_tokens=True,
    )
    tokens = torch.cat([out["image_intermediates_prefix"][-1], out["image_intermediates"][-1]], 1)
    if visual.proj is not None:
        tokens = tokens @ visual.proj  # (B, 1 + N, D)
    pooled = out["image_features"] if last else tokens[:, 0]
    return pooled, tokens


def _timm_features(trunk: nn.Module, images: torch.Tensor, layer: int) -> torch.Tensor:
    if layer == -1:
        return trunk.forward_features(images)
    if not hasattr(trunk, "num_prefix_tokens"):
        raise UnsupportedBackbone(
            f"timm trunk {type(trunk).__name__} gives tokens from its last stage only "
            f"(layer=-1), not layer={layer}"
        )
    return trunk.forward_intermediates(
        images, indices=[layer], norm=True, intermediates_only=True, output_fmt="NLC"
    )[-1]


def _timm_tokens(visual: nn.Module, images: torch.Tensor, layer: int):
    trunk = visual.trunk
    features = _timm_features(trunk, images, layer)
    channels = int(trunk.num_features)
    if features.ndim == 3:  # (B, prefix + N, C): ViT-like
        prefix = int(getattr(trunk, "num_prefix_tokens", 0))
        spatial = features[:, prefix:]  # (B, N, C)
        B, N, C = spatial.shape
        # Each token alone, repeated over the prefix slots, so any pooling reads just it.
        single = spatial.reshape(B * N, 1, C).expand(B * N, prefix + 1, C)
    elif features.ndim == 4 and features.shape[1] == channels:  # (B, C, H, W)
        spatial = features.flatten(2).transpose(1, 2)  # (B, N, C)
        B, N, C = spatial.shape
        single = spatial.reshape(B * N, C, 1, 1)
    elif features.ndim == 4 and features.shape[-1] == channels:  # (B, H, W, C): Swin
        spatial = features.flatten(1, 2)
        B, N, C = spatial.shape
        single = spatial.reshape(B * N, 1, 1, C)
    else:
        raise UnsupportedBackbone(
            f"timm trunk {type(trunk).__name__} returns features of shape "
            f"{tuple(features.shape)}, not tokens of width {channels}"
        )
    tokens = visual.head(trunk.forward_head(single)).reshape(B, N, -1)  # (B, N, D)
    pooled = visual.head(trunk.forward_head(features))  # (B, D): the tower's own output
    if layer != -1:
        pooled = tokens.mean(1)
    return pooled, torch.cat([pooled[:, None], tokens], 1)


def _resnet_tokens(visual: nn.Module, images: torch.Tensor, layer: int):
    if layer != -1:
        raise UnsupportedBackbone(
            f"ModifiedResNet gives tokens from its final feature map only (layer=-1), "
            f"not layer={layer}"
        )
    out = visual.forward_intermediates(images, indices=[4])
    feature_map = out["image_intermediates"][-1]  # (B, C, h, w)
    pool = visual.attnpool
    x = feature_map.flatten(2).transpose(1, 2)  # (B, hw, C)
    x = x + pool.positional_embedding[1:].to(x.dtype)  # the spatial positions' embeddings
    tokens = pool.c_proj(pool.v_proj(x))  # (B, hw, D): value path of the attention pool
    pooled = out["image_features"]
    return pooled, torch.cat([pooled[:, None], tokens], 1)


READERS = {"vit": _vit_tokens, "timm": _timm_tokens, "resnet": _resnet_tokens}


def image_tokens(visual: nn.Module, images: torch.Tensor, layer: int = -1):
    """(pooled (B, D), tokens (B, 1 + N, D)) for any supported tower (module docstring)."""
    return READERS[tower_kind(visual)](visual, images, layer)
