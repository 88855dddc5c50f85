"""The shared LR schedule: linear warm-up, then cosine decay down to a floor."""

from __future__ import annotations

import pytest
import torch

from components.models.param_groups import split_param_groups
from components.training.optim import build_optimizer, warmup_cosine


def _lrs(floor: float, steps: int = 20, warmup: int = 4) -> list[float]:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    scheduler = warmup_cosine(optimizer, warmup, steps, floor)
    lrs = []
    for _ in range(steps):
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return lrs + [scheduler.get_last_lr()[0]]


def test_cosine_decays_to_zero_by_default_and_to_the_floor_when_given():
    decayed, half, constant = _lrs(0.0), _lrs(0.5), _lrs(1.0)
    assert decayed[:4] == pytest.approx([0.5, 1.0, 1.5, 2.0])  # warm-up, same for every floor
    assert decayed[-1] == pytest.approx(0.0) and half[-1] == pytest.approx(1.0)
    assert all(b <= a for a, b in zip(decayed[3:], decayed[4:], strict=False))
    assert constant[3:] == pytest.approx([2.0] * (len(constant) - 3))


class _TwoPart(torch.nn.Module):
    """A backbone-like part and a new head, with every kind of tensor AdamW groups split."""

    def __init__(self):
        super().__init__()
        self.backbone = torch.nn.ModuleDict(
            {"proj": torch.nn.Linear(4, 4), "ln_final": torch.nn.LayerNorm(4)}
        )
        self.backbone.logit_scale = torch.nn.Parameter(torch.ones([]))
        self.head = torch.nn.Linear(4, 2)


def test_param_groups_split_backbone_from_new_modules_and_skip_decay_on_norms_biases_scale():
    model = _TwoPart()
    groups = {g["name"]: g for g in split_param_groups(model, 1e-5, 1e-3, 0.1)}
    names = {id(p): n for n, p in model.named_parameters()}
    members = {k: sorted(names[id(p)] for p in g["params"]) for k, g in groups.items()}
    assert members == {
        "backbone_decay": ["backbone.proj.weight"],
        "backbone_no_decay": [
            "backbone.ln_final.bias",
            "backbone.ln_final.weight",
            "backbone.proj.bias",
        ],
        "head_decay": ["head.weight"],
        "head_no_decay": ["backbone.logit_scale", "head.bias"],
    }
    assert groups["backbone_decay"]["lr"] == 1e-5 and groups["head_decay"]["lr"] == 1e-3
    assert (
        groups["backbone_no_decay"]["weight_decay"] == 0
        and groups["head_decay"]["weight_decay"] == 0.1
    )


def test_frozen_parameters_are_in_no_group_and_all_frozen_is_an_error():
    model = _TwoPart()
    model.backbone.requires_grad_(False)
    params = [p for g in build_optimizer(model, 1e-5, 1e-3, 0.1).param_groups for p in g["params"]]
    assert {id(p) for p in params} == {id(p) for p in model.head.parameters()}
    model.head.requires_grad_(False)
    with pytest.raises(ValueError, match="every parameter is frozen"):
        build_optimizer(model, 1e-5, 1e-3, 0.1)
