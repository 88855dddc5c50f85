"""The shared LR schedule: linear warm-up, then cosine decay down to a floor."""

from __future__ import annotations

import pytest
import torch

from components.training.optim import warmup_cosine


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
