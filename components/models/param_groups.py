"""Parameter groups every bindkit model hands its optimiser: backbone vs new modules, decay vs not.

They live with the models (each model's ``param_groups`` returns them) so models need nothing
from training; training/optim.py builds AdamW over the same groups.
"""

from __future__ import annotations

from torch import nn


def _no_decay(name: str, param: nn.Parameter) -> bool:
    """open_clip_train's exclusion: 1-D tensors (norms, biases, class tokens) and the scale."""
    return (
        param.ndim < 2
        or "bn" in name
        or "ln" in name
        or "norm" in name
        or "bias" in name
        or ("logit_scale" in name)
    )


def split_param_groups(
    model: nn.Module, backbone_lr: float, head_lr: float, weight_decay: float
) -> list[dict]:
    """AdamW groups: (backbone | new modules) x (decay | no decay), frozen tensors left out.

    The backbone's pretrained towers train at ``backbone_lr``; modules new to the model
    (binding module, score heads) and the temperature at ``head_lr``. Parameters frozen by
    ``lock_image``/``lock_text`` (requires_grad False) are in no group, so AdamW never
    touches them, not even through weight decay.
    """
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        in_backbone = name.startswith("backbone.") and "logit_scale" not in name
        decay = not _no_decay(name, param)
        groups.setdefault((in_backbone, decay), []).append(param)
    return [
        {
            "params": params,
            "lr": backbone_lr if in_backbone else head_lr,
            "weight_decay": weight_decay if decay else 0.0,
            "name": f"{'backbone' if in_backbone else 'head'}_{'decay' if decay else 'no_decay'}",
        }
        for (in_backbone, decay), params in sorted(groups.items(), reverse=True)
    ]
