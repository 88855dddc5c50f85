"""OC-CLIP's binding module and structured similarity (docs/methods/occlip.md 1.2, 1.3; arXiv 2502.14113).

Binding: node phrases query the image's patch tokens through *inverted* cross-attention:
the softmax runs over the queries (nodes + K_d learned default tokens) for each patch, so
queries compete to explain a patch; each query's weights are then renormalised over patches
(Slot Attention style) before aggregating values. Slot i belongs to node i by construction.

Structured score (NeurIPS form):
    S(x, G) = (alpha * sum_i cos(N_i, S_i) + beta * sum_j cos(r_j, f_s([r_j; S_s]) + f_o([r_j; S_o])))
              / (alpha * M + beta * P)
with separate MLPs f_s != f_o, so swapping subject and object changes the score.

Shapes: I images, T graphs, M nodes, P relations, L patches, K_d default tokens, D backbone
embedding width, d binding width. Pairwise tensors broadcast over leading (I, T) dims, so the
same code scores the B x B batch matrix and a graph's perturbed copies.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

RELATION_HEADS = ("additive", "joint")  # f_s([r; S_s]) + f_o([r; S_o]) | f([r; S_s; S_o])
NEG_INF = torch.finfo(torch.float32).min  # exp(NEG_INF - max) == 0 exactly: masked queries vanish


class InvertedAttention(nn.Module):
    """Multi-head cross-attention whose softmax runs over queries, then renormalised over keys."""

    def __init__(self, dim: int, heads: int, eps: float = 1e-8, competitive: bool = True) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"binding width {dim} is not divisible by heads={heads}")
        self.heads, self.eps, self.competitive = heads, eps, competitive
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        """(..., N, d) -> (..., h, N, d/h)."""
        return x.unflatten(-1, (self.heads, -1)).transpose(-3, -2)

    def forward(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        query_mask: torch.Tensor,
        return_weights: bool = False,
        keep: int | None = None,
    ):
        """queries (A, T, Q, d): T query groups (graphs) per key set; keys (I, 1, L, d); A is 1
        or I; query_mask (T, Q) or (A, T, Q) bool. 3-D inputs (B, Q, d), (B, L, d), (B, Q) are
        one group per key set. ``keep``: return only the first ``keep`` queries' updates (the
        rest still compete for patches).

        Returns the update (I, T, Q|keep, d) and, if asked, (competition (I, T, h, Q, L) summing
        to 1 over Q, renormalised weights (I, T, h, Q, L) summing to ~1 over L).
        """
        grouped = queries.dim() == 4
        if not grouped:
            queries, keys, query_mask = queries[:, None], keys[:, None], query_mask[:, None]
        T, Q = queries.shape[1:3]
        # Every graph's queries meet their image's keys in one matmul per (image, head),
        # (A, h, T*Q, dh) @ (I, h, dh, L): broadcasting keys to all I x T pairs instead
        # copied them T times and ran I*T*h tiny matmuls.
        q = self.split(self.q(queries)).transpose(1, 2).flatten(2, 3)  # (A, h, T*Q, dh)
        k = self.split(self.k(keys)).squeeze(1)  # (I, h, L, dh)
        v = self.split(self.v(keys)).squeeze(1)  # (I, h, L, dh)
        mask = query_mask.reshape(-1, T, Q)[:, None, :, :, None]  # (A|1, 1, T, Q, 1)
        # Logits and softmax in float32, autocast off: the competition is a softmax over a
        # handful of queries and the renormalisation divides by small sums.
        with torch.autocast(device_type=q.device.type, enabled=False):
            logits = q.float() @ k.float().transpose(-1, -2) / math.sqrt(q.shape[-1])
            logits = logits.unflatten(2, (T, Q)).masked_fill(~mask, NEG_INF)  # (I, h, T, Q, L)
            if self.competitive:
                # A_{q,l} = softmax over queries q' of <Q'_q', K_l> / sqrt(d)   (docs/methods/occlip.md 1.2)
                competition = logits.softmax(dim=-2)
                # W_{q,l} = A_{q,l} / (sum_l' A_{q,l'} + eps)
                weights = competition / (competition.sum(dim=-1, keepdim=True) + self.eps)
            else:  # "- Comp Att" ablation: ordinary softmax over patches
                competition = weights = logits.softmax(dim=-1)
        kept = weights[:, :, :, :keep]  # (I, h, T, Qk, L)
        update = kept.flatten(2, 3).to(v.dtype) @ v  # (I, h, T*Qk, dh)
        update = self.out(update.unflatten(2, (T, -1)).permute(0, 2, 3, 1, 4).flatten(-2))
        if not grouped:
            update, competition, weights = update[:, 0], competition[:, :, 0], weights[:, :, 0]
        else:
            competition, weights = competition.transpose(1, 2), weights.transpose(1, 2)
        if return_weights:
            return update, competition, weights  # (I, T, Q|keep, d), 2 x (I, [T,] h, Q, L)
        return update


class BindingBlock(nn.Module):
    """Decoder-style block: slots += attn(LN(slots), LN(patches)); slots += MLP(LN(slots))."""

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_ratio: float = 4.0,
        competitive: bool = True,
        residual: bool = True,
    ):
        super().__init__()
        self.residual = residual  # False: the slot is the attention read-out alone (paper)
        self.norm_slots = nn.LayerNorm(dim)
        self.norm_patches = nn.LayerNorm(dim)
        self.attn = InvertedAttention(dim, heads, competitive=competitive)
        self.norm_mlp = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(
        self,
        slots: torch.Tensor,
        patches: torch.Tensor,
        mask: torch.Tensor,
        keep: int | None = None,
    ) -> torch.Tensor:
        """``keep``: only the first ``keep`` slots are updated and returned (the last block
        drops the default slots before their unused value aggregation and MLP)."""
        update = self.attn(self.norm_slots(slots), self.norm_patches(patches), mask, keep=keep)
        slots = slots[..., :keep, :] + update if self.residual else update
        return slots + self.mlp(self.norm_mlp(slots))


POSITION_FREQUENCIES = 4


def grid_positions(num_patches: int, device, dtype) -> torch.Tensor:
    """Sin/cos features of each patch's (x, y) on a square grid, row-major: (L, 4F)."""
    side = math.isqrt(num_patches)
    if side * side != num_patches:
        raise ValueError(f"patch positions need a square grid, got {num_patches} patches")
    coords = (torch.arange(side, device=device, dtype=torch.float32) + 0.5) / side  # (G,)
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    xy = torch.stack([x.flatten(), y.flatten()], dim=-1)  # (L, 2)
    freqs = math.pi * 2.0 ** torch.arange(POSITION_FREQUENCIES, device=device)  # (F,)
    angles = (xy[:, :, None] * freqs).flatten(1)  # (L, 2F)
    return torch.cat([angles.sin(), angles.cos()], dim=-1).to(dtype)  # (L, 4F)


class BindingModule(nn.Module):
    """Nodes (T, M, D) x patches (I, L, D) -> slots (I, T, M, d); default slots dropped."""

    def __init__(
        self,
        text_dim: int,
        image_dim: int,
        dim: int,
        depth: int = 2,
        heads: int = 4,
        num_default_tokens: int = 4,
        competitive: bool = True,
        patch_positions: bool = True,
        query_residual: bool = True,
    ) -> None:
        super().__init__()
        self.node_in = nn.Linear(text_dim, dim)
        self.patch_in = nn.Linear(image_dim, dim)
        # Where a patch sits enters the keys and values, so each slot carries its object's
        # position and the relation head can tell "left of" from "right of" even when the
        # backbone's last block has washed positions out of its tokens.
        self.pos_in = nn.Linear(4 * POSITION_FREQUENCIES, dim) if patch_positions else None
        self.default_tokens = nn.Parameter(torch.randn(num_default_tokens, dim) * 0.02)
        # query_residual=False (the paper's S'_q = sum_l W_ql V_l): the first block's slots
        # hold no copy of the node query, so a slot can only carry what it read from patches.
        self.blocks = nn.ModuleList(
            BindingBlock(dim, heads, competitive=competitive, residual=query_residual or i > 0)
            for i in range(depth)
        )
        self.norm_out = nn.LayerNorm(dim)

    def forward(
        self, nodes: torch.Tensor, node_mask: torch.Tensor, patches: torch.Tensor
    ) -> torch.Tensor:
        """nodes (T, M, D), node_mask (T, M), patches (I, L, D) -> slots (I, T, M, d)."""
        T, M, _ = nodes.shape
        K = self.default_tokens.shape[0]
        queries = self.node_in(nodes)  # (T, M, d)
        defaults = self.default_tokens.to(queries.dtype).expand(T, K, -1)
        slots = torch.cat([queries, defaults], dim=1)[None]  # (1, T, M + K, d)
        mask = torch.cat([node_mask, node_mask.new_ones(T, K)], dim=1)  # (T, M + K)
        keys = self.patch_in(patches)  # (I, L, d)
        if self.pos_in is not None:
            keys = keys + self.pos_in(grid_positions(keys.shape[1], keys.device, keys.dtype))
        keys = keys[:, None]  # (I, 1, L, d)
        for i, block in enumerate(self.blocks):
            last = i == len(self.blocks) - 1
            # (I, T, M + K, d) after the first block; the last one keeps the M node slots
            slots = block(slots, keys, mask, keep=M if last else None)
        slots = slots.expand(keys.shape[0], T, -1, -1)  # depth 0: the projected queries
        return self.norm_out(slots[:, :, :M])  # default slots are discarded


class StructuredScore(nn.Module):
    """Object and relation heads plus learned alpha, beta (docs/methods/occlip.md 1.3)."""

    def __init__(
        self,
        text_dim: int,
        slot_dim: int,
        d_obj: int = 128,
        d_rel: int = 128,
        relation_head: str = "additive",
    ):
        super().__init__()
        if relation_head not in RELATION_HEADS:
            raise ValueError(
                f"relation_head must be one of {RELATION_HEADS}, got {relation_head!r}"
            )
        self.relation_head = relation_head
        self.node_proj = nn.Linear(text_dim, d_obj)  # N_i -> d_obj
        self.slot_proj = nn.Linear(slot_dim, d_obj)  # S_i -> d_obj
        self.rel_proj = nn.Linear(text_dim, d_rel)  # r_j -> d_rel
        hidden = 2 * d_rel
        # f_s([r; S]) and f_o([r; S]): the first layer of each MLP is split into its r and S
        # parts (identical to a Linear over the concatenation) so the slot part is computed
        # once per slot instead of once per (relation, slot) pair.
        self.subj_rel, self.subj_slot = (
            nn.Linear(text_dim, hidden),
            nn.Linear(slot_dim, hidden, bias=False),
        )
        self.obj_rel, self.obj_slot = (
            nn.Linear(text_dim, hidden),
            nn.Linear(slot_dim, hidden, bias=False),
        )
        self.subj_out, self.obj_out = nn.Linear(hidden, d_rel), nn.Linear(hidden, d_rel)
        if relation_head == "joint":  # one MLP f([r; S_s; S_o]): subj_* layers and obj_slot
            del self.obj_rel, self.obj_out
        init = math.log(math.e - 1.0)  # softplus(init) == 1: alpha = beta = 1 at the start
        self.alpha_raw = nn.Parameter(torch.tensor(init))
        self.beta_raw = nn.Parameter(torch.tensor(init))

    @property
    def alpha(self) -> torch.Tensor:
        return F.softplus(self.alpha_raw)

    @property
    def beta(self) -> torch.Tensor:
        return F.softplus(self.beta_raw)

    def object_cos(self, nodes: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        """nodes (..., M, D), slots (..., M, d) -> cos(N_i, S_i) (..., M) in float32."""
        n = F.normalize(self.node_proj(nodes).float(), dim=-1)
        s = F.normalize(self.slot_proj(slots).float(), dim=-1)
        return (n * s).sum(-1)

    def relation_cos(
        self,
        relations: torch.Tensor,
        slots: torch.Tensor,
        subject: torch.Tensor,
        object: torch.Tensor,
    ) -> torch.Tensor:
        """cos(r_j, f_s([r_j; S_s]) + f_o([r_j; S_o])) (..., P) in float32.

        relations (..., P, D), slots (..., M, d), subject/object (..., P) node indices; the
        leading dims broadcast (slots (I, T, ...) with graphs (T, ...); or (B, 1, ...) with
        perturbed indices (B, K, ...)).
        """
        lead = torch.broadcast_shapes(slots.shape[:-2], subject.shape[:-1], relations.shape[:-2])
        P = subject.shape[-1]

        def pick(slot_part: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
            slot_part = slot_part.expand(*lead, *slot_part.shape[-2:])  # (..., M, h)
            index = index.expand(*lead, P)[..., None].expand(*lead, P, slot_part.shape[-1])
            return slot_part.gather(-2, index)  # (..., P, h)

        hidden_s = pick(self.subj_slot(slots), subject) + self.subj_rel(relations)
        if self.relation_head == "joint":  # ablation: f([r; S_s; S_o]), one hidden layer
            pred = self.subj_out(F.gelu(hidden_s + pick(self.obj_slot(slots), object)))
        else:
            hidden_o = pick(self.obj_slot(slots), object) + self.obj_rel(relations)
            pred = self.subj_out(F.gelu(hidden_s)) + self.obj_out(F.gelu(hidden_o))  # (..., P, d)
        r = F.normalize(self.rel_proj(relations).float(), dim=-1)
        return (F.normalize(pred.float(), dim=-1) * r).sum(-1)

    def combine(
        self,
        object_cos: torch.Tensor,
        node_mask: torch.Tensor,
        relation_cos: torch.Tensor,
        relation_mask: torch.Tensor,
    ) -> torch.Tensor:
        """(alpha sum_i cos_i + beta sum_j rel_j) / (alpha M + beta P) over unmasked terms.

        With P = 0 this is the mean object cosine; an empty graph scores 0.
        """
        alpha, beta = self.alpha.float(), self.beta.float()
        obj = (object_cos * node_mask).sum(-1)
        rel = (relation_cos * relation_mask).sum(-1)
        count = alpha * node_mask.sum(-1) + beta * relation_mask.sum(-1)
        return (alpha * obj + beta * rel) / count.clamp_min(1e-6)
