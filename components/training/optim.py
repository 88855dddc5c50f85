"""Optimiser and schedule builders shared by every trained model (OC-CLIP, CLIP, DCSM)."""

from __future__ import annotations

import math

import torch
from torch import nn


def build_optimizer(
    model: nn.Module,
    backbone_lr: float,
    head_lr: float,
    weight_decay: float,
    beta2: float = 0.98,
    eps: float = 1e-6,
) -> torch.optim.AdamW:
    """AdamW over the model's own parameter groups (backbone vs new heads, no-decay split).

    beta2 0.98 and eps 1e-6 are CLIP's (open_clip's defaults for ViTs); a small head trained
    from scratch on cached features (DCSM) learns faster with Adam's own 0.999 and 1e-8.
    """
    groups = model.param_groups(backbone_lr=backbone_lr, head_lr=head_lr, weight_decay=weight_decay)
    groups = [g for g in groups if g["params"]]
    return torch.optim.AdamW(groups, betas=(0.9, beta2), eps=eps)


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
