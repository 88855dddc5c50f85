"""Contrastive losses shared by CLIP and OC-CLIP, and OC-CLIP's perturbed-graph negatives.

- ``symmetric_infonce``: CLIP's loss over a (B, B) logit matrix, matched pairs on the diagonal.
- ``relation_negatives`` + ``local_graph_loss``: OC-CLIP's L_rel (docs/methods/occlip.md 1.4): for a graph
  with at least one relation, perturbed copies that swap one relation's subject and object or
  re-point one of its ends to another node; the image must prefer its own graph.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MAX_LOGIT_SCALE = 100.0


def logit_scale_value(log_scale: torch.Tensor) -> torch.Tensor:
    """exp(log_scale) clamped to 100, as CLIP does; float32 for bf16-autocast safety."""
    return log_scale.float().clamp(max=math.log(MAX_LOGIT_SCALE)).exp()


def symmetric_infonce(logits: torch.Tensor) -> torch.Tensor:
    """Mean of image->text and text->image cross-entropy over a (B, B) logit matrix."""
    logits = logits.float()
    target = torch.arange(logits.shape[0], device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def relation_negatives(
    subject: torch.Tensor,
    object: torch.Tensor,
    relation_mask: torch.Tensor,
    node_mask: torch.Tensor,
    num_negatives: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """K perturbed edge lists per graph: even k swap a relation, odd k re-point one of its ends.

    subject/object/relation_mask (B, P), node_mask (B, M). Each negative changes exactly one
    relation j, chosen uniformly among the graph's relations:
      swap:     (s_j, o_j) -> (o_j, s_j)
      reassign: s_j or o_j (coin flip) -> a different node drawn uniformly from the graph.
    Returns (subject (B, K, P), object (B, K, P), valid (B, K)); a negative is invalid when its
    graph has no relation or the perturbation left the edge list unchanged (s_j == o_j swap,
    single-node graph). A ``generator`` must live on the tensors' device.
    """
    B, P = subject.shape
    M, K, device = node_mask.shape[1], num_negatives, subject.device
    has_relation = relation_mask.any(-1)  # (B,)
    if P == 0 or K == 0:
        empty = subject.new_zeros(B, K, P)
        return empty, empty.clone(), torch.zeros(B, K, dtype=torch.bool, device=device)

    def draw(weights: torch.Tensor) -> torch.Tensor:  # rows of (n, C) weights -> (n,)
        return torch.multinomial(weights, 1, generator=generator).squeeze(-1)

    relation_weights = relation_mask.float() + (~has_relation)[:, None].float()  # no all-zero rows
    j = draw(relation_weights.repeat_interleave(K, 0)).view(B, K)  # relation to perturb
    s_j = subject.gather(1, j)  # (B, K)
    o_j = object.gather(1, j)
    swap = (torch.arange(K, device=device) % 2 == 0).expand(B, K)
    on_subject = torch.rand(B, K, generator=generator, device=device) < 0.5
    current = torch.where(on_subject, s_j, o_j)
    node_weights = node_mask[:, None].float().expand(B, K, M).clone()
    node_weights.scatter_(-1, current[..., None], 0.0)  # a different node
    can_reassign = node_weights.sum(-1) > 0
    node_weights[~can_reassign] = 1.0
    new = draw(node_weights.view(B * K, M)).view(B, K)
    new_s = torch.where(swap, o_j, torch.where(on_subject, new, s_j))
    new_o = torch.where(swap, s_j, torch.where(on_subject, o_j, new))
    neg_subject = subject[:, None].expand(B, K, P).clone()
    neg_object = object[:, None].expand(B, K, P).clone()
    neg_subject.scatter_(-1, j[..., None], new_s[..., None])
    neg_object.scatter_(-1, j[..., None], new_o[..., None])
    changed = ((neg_subject != subject[:, None]) | (neg_object != object[:, None])).any(-1)
    valid = has_relation[:, None] & changed
    return neg_subject, neg_object, valid


def local_graph_loss(
    positive: torch.Tensor, negatives: torch.Tensor, valid: torch.Tensor, scale: torch.Tensor
) -> torch.Tensor:
    """L_rel = -log(e^{S(x,G)/tau} / (e^{S(x,G)/tau} + sum_k e^{S(x,G~_k)/tau})).

    positive (B,), negatives (B, K), valid (B, K). Averaged over graphs with >= 1 valid
    negative; zero (still attached to the graph) when there is none.
    """
    logits = scale * torch.cat([positive[:, None], negatives], dim=1).float()  # (B, 1 + K)
    keep = torch.cat([torch.ones_like(valid[:, :1]), valid], dim=1)
    logits = logits.masked_fill(~keep, float("-inf"))
    rows = valid.any(-1)
    if not bool(rows.any()):
        return positive.sum() * 0.0
    target = torch.zeros(int(rows.sum()), dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits[rows], target)
