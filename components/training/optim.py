"""Optimiser and schedule builders shared by every trained model (OC-CLIP, CLIP, DCSM)."""

from __future__ import annotations

import math

import torch
from torch import nn

from components.models.param_groups import split_param_groups


def build_optimizer(
    model: nn.Module,
    backbone_lr: float,
    head_lr: float,
    weight_decay: float,
    beta2: float = 0.98,
    eps: float = 1e-6,
) -> torch.optim.AdamW:
    """AdamW over ``split_param_groups`` (backbone vs new modules, no-decay split).

    beta2 0.98 and eps 1e-6 are CLIP's (open_clip's defaults for ViTs); a small head trained
    from scratch on cached features (DCSM) learns faster with Adam's own 0.999 and 1e-8.
    """
    groups = split_param_groups(model, backbone_lr, head_lr, weight_decay)
    if not groups:
        raise ValueError(
            f"{type(model).__name__}: every parameter is frozen (lock_image and lock_text "
            "on a model without new modules?): nothing to train"
        )
    # fused: one kernel per tensor instead of ~10 Python-dispatched ops; on CPU it cut the
    # update of the 49,408-row token embedding ~5x (docs/performance.md).
    return torch.optim.AdamW(groups, betas=(0.9, beta2), eps=eps, fused=True)


def warmup_cosine(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, floor: float = 0.0
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up then cosine decay to ``floor`` x the base LR (OC-CLIP's schedule)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
