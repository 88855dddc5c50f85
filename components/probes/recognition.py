"""Frozen concept/object recognition probes over scene embeddings of a synthetic world.

The additive and complexity analyses of arXiv 2605.31503 both ask "can a fixed reader
still recognise the scene's concepts and objects?": after removing a component, or on
an approximator's prediction instead of the real embedding. The reader is bias-free
linear (one weight matrix per concept, one over all objects), trained by full-batch
Adam with soft cross-entropy against normalised multi-hot targets, and scored with the
strict rule: every present value above every absent one (per concept; over all objects).
Scenes here are fixed-size: ``object_indices`` is (N, K) with every slot filled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


def object_values(object_indices: np.ndarray, value_sizes: Sequence[int]) -> np.ndarray:
    """Mixed-radix concept values (first concept slowest): (N, K) -> (N, K, C)."""
    return np.stack(np.unravel_index(object_indices, tuple(value_sizes)), axis=-1)


def scene_targets(
    object_indices: np.ndarray, value_sizes: Sequence[int], num_objects: int | None = None
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Multi-hot labels: per concept (N, V_c) bool, and over objects (N, |O|) bool.

    ``num_objects`` narrows the object labels when only the first objects are probed.
    """
    objects = torch.as_tensor(object_indices, dtype=torch.long)
    values = torch.as_tensor(object_values(object_indices, value_sizes), dtype=torch.long)
    rows = torch.arange(len(objects))[:, None]
    concept_hot = []
    for concept, size in enumerate(value_sizes):
        hot = torch.zeros(len(objects), size, dtype=torch.bool)
        hot[rows, values[:, :, concept]] = True
        concept_hot.append(hot)
    num_objects = num_objects or int(np.prod(value_sizes))
    object_hot = torch.zeros(len(objects), num_objects, dtype=torch.bool)
    object_hot[rows, objects] = True
    return concept_hot, object_hot


def strict_correct(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Every present above every absent, per row: (N, Q) -> (N,) bool."""
    lowest_present = torch.where(labels, logits, torch.inf).min(1).values
    highest_absent = torch.where(labels, -torch.inf, logits).max(1).values
    return lowest_present > highest_absent


def _soft_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    targets = labels.float() / labels.float().sum(1, keepdim=True)
    return -(targets * F.log_softmax(logits, dim=1)).sum(1).mean()


@dataclass
class RecognitionProbe:
    """Linear readers: rows of ``concept_weights[c]`` (V_c, D) and ``object_weights`` (|O|, D).

    ``normalize`` scores cosine similarity instead of dot products; that is how a
    controlled model's query encoder reads scenes, so its probes set it.
    """

    concept_weights: list[torch.Tensor]
    object_weights: torch.Tensor
    normalize: bool = False

    def _prepare(self, embeddings: torch.Tensor) -> torch.Tensor:
        embeddings = torch.as_tensor(embeddings, dtype=torch.float32)
        return F.normalize(embeddings, dim=-1) if self.normalize else embeddings

    def accuracy(
        self, embeddings: torch.Tensor | np.ndarray, object_indices: np.ndarray
    ) -> dict[str, float]:
        """Strict concept accuracy (all concepts right) and object accuracy: (N, D) -> dict."""
        if len(object_indices) == 0:
            return {"concept_acc": float("nan"), "object_acc": float("nan")}
        value_sizes = [len(w) for w in self.concept_weights]
        concept_hot, object_hot = scene_targets(
            object_indices, value_sizes, num_objects=len(self.object_weights)
        )
        with torch.no_grad():
            emb = self._prepare(embeddings)
            concept_ok = torch.stack(
                [
                    strict_correct(emb @ weight.T, hot)
                    for weight, hot in zip(self.concept_weights, concept_hot, strict=True)
                ]
            ).all(0)
            object_ok = strict_correct(emb @ self.object_weights.T, object_hot)
        return {
            "concept_acc": concept_ok.float().mean().item(),
            "object_acc": object_ok.float().mean().item(),
        }


def train_linear_probe(
    embeddings: np.ndarray | torch.Tensor,
    object_indices: np.ndarray,
    value_sizes: Sequence[int],
    epochs: int = 1000,
    lr: float = 1e-2,
    seed: int = 0,
) -> RecognitionProbe:
    """Bias-free linear probes fitted full-batch (Adam, cosine schedule) to all given scenes."""
    torch.manual_seed(seed)
    emb = torch.as_tensor(embeddings, dtype=torch.float32)
    concept_hot, object_hot = scene_targets(object_indices, value_sizes)
    dim = emb.shape[1]
    concept_weights = [torch.zeros(size, dim, requires_grad=True) for size in value_sizes]
    object_weights = torch.zeros(object_hot.shape[1], dim, requires_grad=True)
    params = [*concept_weights, object_weights]
    optimizer = torch.optim.Adam(params, lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))
    for _ in range(epochs):
        loss = _soft_ce(emb @ object_weights.T, object_hot) + sum(
            _soft_ce(emb @ weight.T, hot)
            for weight, hot in zip(concept_weights, concept_hot, strict=True)
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    return RecognitionProbe(
        [w.detach() for w in concept_weights], object_weights.detach(), normalize=False
    )
