"""IsSameObject pairwise probes ("Does Object Binding Naturally Emerge in Large Pretrained
ViTs?", arXiv 2510.24709; docs/methods/probes.md B).

A patch's label is the majority instance id over its pixels (0 = background). Pairs are
taken within an image: every i < j among the image's patches ("all", background counts as
one instance, as in the reference) or only among foreground patches ("foreground"). A
probe maps the two patch embeddings x, y of one layer to a logit for "same object":

    cosine          l = a cos(x, y) + b        (a baseline: a threshold on cosine similarity)
    linear          l = w^T x + w^T y + 2b
    diag_quadratic  l = w^T (x * y) + b
    quadratic       l = x^T W_s y + b,  W_s = (W + W^T) / (2 sqrt C)         (the main probe)
    low_rank        l = x^T W_s y + b,  W_s = (W1^T W2 + W2^T W1) / (2 sqrt C)

All pair logits of an image are computed at once, (B, P, C) -> (B, P, P), and the loss and
accuracy are taken over the valid pairs. The checkpoint is chosen by val accuracy. Beside
the probe we report trivial baselines on the same test pairs: the constant majority answer
and, where patch classes exist, "same object iff same class" (e.g. same colour).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from components.probes.binding_info import FitConfig, resolve_device

PAIR_FAMILIES = ("cosine", "linear", "diag_quadratic", "quadratic", "low_rank")
PAIR_POLICIES = ("all", "foreground")


def patch_labels_from_mask(
    mask: np.ndarray, grid: int | tuple[int, int], foreground: bool = False
) -> np.ndarray:
    """(H, W) instance ids -> (gh * gw,) majority id per patch, row-major; ties -> lower id.

    ``foreground=True`` takes the majority among object pixels only (0 only for patches with
    none): the reference's plain mode labels every patch background when objects are
    smaller than half a patch (ColorShape at 64 px with 8 px patches).
    """
    gh, gw = (grid, grid) if isinstance(grid, int) else grid
    height, width = mask.shape
    if height % gh or width % gw:
        raise ValueError(f"mask of shape {mask.shape} does not tile into a {gh}x{gw} patch grid")
    ph, pw = height // gh, width // gw
    blocks = mask.reshape(gh, ph, gw, pw).transpose(0, 2, 1, 3).reshape(gh * gw, ph * pw)
    blocks = blocks.astype(np.int64)
    counts = np.zeros((gh * gw, int(blocks.max()) + 1), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(gh * gw), ph * pw), blocks.ravel()), 1)
    if foreground and counts.shape[1] > 1:
        objects = counts[:, 1:]
        return np.where(objects.sum(1) > 0, objects.argmax(1) + 1, 0)
    return counts.argmax(1)  # argmax takes the first maximum: the lower id


def pair_targets(
    patch_labels: torch.Tensor, policy: str = "all"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, P) labels -> same (B, P, P) and valid (B, P, P): pairs i < j the policy keeps."""
    if policy not in PAIR_POLICIES:
        raise ValueError(f"pair policy must be one of {PAIR_POLICIES}, got {policy!r}")
    num_patches = patch_labels.shape[1]
    same = patch_labels[:, :, None] == patch_labels[:, None, :]
    upper = torch.ones(num_patches, num_patches, dtype=torch.bool, device=patch_labels.device).triu(
        1
    )
    valid = upper.expand_as(same)
    if policy == "foreground":
        foreground = patch_labels > 0
        valid = valid & foreground[:, :, None] & foreground[:, None, :]
    return same, valid


class CosinePairProbe(nn.Module):
    """The reference's cosine baseline: a learned threshold (and scale, for the BCE)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(10.0))
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        unit = F.normalize(x, dim=-1)
        return self.scale * (unit @ unit.transpose(1, 2)) + self.bias


class LinearPairProbe(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Linear(dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.weight(x).squeeze(-1)  # (B, P) = w^T x + b
        return a[:, :, None] + a[:, None, :]  # w^T x + w^T y + 2b, as in the reference


class DiagQuadraticPairProbe(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(dim) / math.sqrt(dim))
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.weight) @ x.transpose(1, 2) + self.bias


class QuadraticPairProbe(nn.Module):
    """Full symmetric W_s = (W + W^T) / (2 sqrt C), or low rank when ``rank`` is given."""

    def __init__(self, dim: int, rank: int | None = None):
        super().__init__()
        if rank is None:
            self.w = nn.Parameter(nn.Linear(dim, dim).weight.detach().clone())
        else:
            self.w1 = nn.Parameter(torch.randn(rank, dim) / math.sqrt(dim))
            self.w2 = nn.Parameter(torch.randn(rank, dim) / math.sqrt(dim))
        self.rank = rank
        self.bias = nn.Parameter(torch.zeros(()))
        self.scale = 1.0 / (2.0 * math.sqrt(dim))

    def symmetric_weight(self) -> torch.Tensor:
        if self.rank is None:
            return (self.w + self.w.T) * self.scale
        product = self.w1.T @ self.w2
        return (product + product.T) * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.symmetric_weight() @ x.transpose(1, 2) + self.bias  # (B, P, P)


def make_pair_probe(family: str, dim: int, rank: int = 100, seed: int | None = None) -> nn.Module:
    """The one factory for IsSameObject probes: (B, P, C) patch tokens -> (B, P, P) logits.

    ``seed``: as in ``make_probe``, the initial weights come from it, not from the process's
    history.
    """
    if seed is not None:
        torch.manual_seed(seed)
    if family == "cosine":
        return CosinePairProbe()
    if family == "linear":
        return LinearPairProbe(dim)
    if family == "diag_quadratic":
        return DiagQuadraticPairProbe(dim)
    if family == "quadratic":
        return QuadraticPairProbe(dim)
    if family == "low_rank":
        return QuadraticPairProbe(dim, rank=min(rank, dim))
    raise ValueError(f"unknown pair probe family {family!r}; expected one of {PAIR_FAMILIES}")


@dataclass
class PairData:
    """Patch tokens (N, P, C), possibly a read-only memmap, and patch labels (N, P)."""

    tokens: np.ndarray
    patch_labels: np.ndarray
    patch_classes: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (N, P), -1 = none

    def __post_init__(self) -> None:
        if self.tokens.shape[:2] != self.patch_labels.shape:
            raise ValueError(
                f"PairData: tokens {self.tokens.shape} do not match patch labels "
                f"{self.patch_labels.shape} (expected (N, P, C) and (N, P))"
            )


def _images(
    data: PairData, index: np.ndarray, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    index = np.sort(index)
    tokens = torch.from_numpy(np.asarray(data.tokens[index], dtype=np.float32)).to(device)
    labels = torch.from_numpy(np.asarray(data.patch_labels[index], dtype=np.int64)).to(device)
    return tokens, labels


@torch.no_grad()
def pair_accuracy(
    probe: nn.Module, data: PairData, policy: str, batch_size: int, device: str = "auto"
) -> float:
    """Accuracy of logit > 0 over the valid pairs of every image."""
    device_ = resolve_device(device)
    probe.eval()
    correct = total = 0
    for start in range(0, len(data.tokens), batch_size):
        tokens, labels = _images(
            data, np.arange(start, min(start + batch_size, len(data.tokens))), device_
        )
        same, valid = pair_targets(labels, policy)
        predicted = probe(tokens) > 0
        correct += int(((predicted == same) & valid).sum())
        total += int(valid.sum())
    return correct / total if total else float("nan")  # no valid pairs: nothing to score


@dataclass
class PairFit:
    best_epoch: int
    val_accuracy: float
    test_accuracy: float
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def fit_pair_probe(
    probe: nn.Module,
    train: PairData,
    val: PairData,
    test: PairData,
    config: FitConfig,
    policy: str = "all",
) -> PairFit:
    """Adam + StepLR on BCE over valid pairs (batches of images); keep the best-val-accuracy epoch."""
    device = resolve_device(config.device)
    probe.to(device)
    generator = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    optimizer = torch.optim.Adam(probe.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, config.step_size, config.gamma)
    started, best, best_state, history = time.perf_counter(), None, None, []
    for epoch in range(config.epochs):
        probe.train()
        order = generator.permutation(len(train.tokens))
        for start in range(0, len(order), config.batch_size):
            tokens, labels = _images(train, order[start : start + config.batch_size], device)
            same, valid = pair_targets(labels, policy)
            if not valid.any():
                continue
            logits = probe(tokens)
            loss = F.binary_cross_entropy_with_logits(logits[valid], same[valid].float())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        schedule.step()
        val_accuracy = pair_accuracy(probe, val, policy, config.batch_size, config.device)
        test_accuracy = pair_accuracy(probe, test, policy, config.batch_size, config.device)
        history.append(
            {"epoch": epoch, "val_accuracy": val_accuracy, "test_accuracy": test_accuracy}
        )
        if best is None or val_accuracy > best.val_accuracy:
            best = PairFit(epoch, val_accuracy, test_accuracy)
            best_state = {k: v.detach().cpu().clone() for k, v in probe.state_dict().items()}
    assert best is not None and best_state is not None, "fit_pair_probe needs epochs >= 1"
    probe.load_state_dict(best_state)
    best.history, best.seconds = history, time.perf_counter() - started
    return best


def pair_baselines(
    train: PairData, test: PairData, policy: str = "all", chunk: int = 512
) -> dict[str, float]:
    """Trivial answers on the test pairs: constant majority (from train) and class equality."""

    def tally(data: PairData) -> tuple[int, int, dict[str, int]]:
        same_count = total = 0
        class_correct = {name: 0 for name in data.patch_classes}
        for start in range(0, len(data.patch_labels), chunk):
            labels = torch.from_numpy(
                np.asarray(data.patch_labels[start : start + chunk], dtype=np.int64)
            )
            same, valid = pair_targets(labels, policy)
            same_count += int((same & valid).sum())
            total += int(valid.sum())
            for name, classes in data.patch_classes.items():
                c = torch.from_numpy(np.asarray(classes[start : start + chunk], dtype=np.int64))
                predicted = c[:, :, None] == c[:, None, :]
                class_correct[name] += int(((predicted == same) & valid).sum())
        return same_count, total, class_correct

    train_same, train_total, _ = tally(train)
    test_same, test_total, class_correct = tally(test)
    majority_same = train_same * 2 >= train_total
    test_p_same = test_same / max(test_total, 1)
    baselines = {
        "p_same": test_p_same,
        "constant": test_p_same if majority_same else 1.0 - test_p_same,
        "num_test_pairs": test_total,
    }
    for name, correct in class_correct.items():
        baselines[f"same_{name}"] = correct / max(test_total, 1)
    return baselines


def measure_same_object(
    splits: Mapping[str, PairData],
    family: str,
    *,
    policy: str = "all",
    rank: int = 100,
    fit: FitConfig | None = None,
) -> tuple[dict[str, float], nn.Module]:
    """Fit one pair probe on train, select on val, report test accuracy beside the baselines."""
    fit = fit or FitConfig()
    dim = int(splits["train"].tokens.shape[-1])
    probe = make_pair_probe(family, dim, rank, seed=fit.seed)
    result = fit_pair_probe(probe, splits["train"], splits["val"], splits["test"], fit, policy)
    scores = {
        "accuracy": result.test_accuracy,
        "val_accuracy": result.val_accuracy,
        "best_epoch": result.best_epoch,
        "seconds": result.seconds,
        **pair_baselines(splits["train"], splits["test"], policy),
    }
    return scores, probe
