"""Dual-encoder transformers on controlled token scenes, their loss and the strict metric.

Follows the released code of "How can embedding models bind concepts?" (arXiv 2605.31503):
two independent pre-LN transformers (scene encoder f, query encoder q) with sinusoidal
positions, bidirectional attention with a key-padding mask, readout at EOS (not PAD, which
the reference's CLIP-like tower got wrong), a linear head and cosine logits scaled by a
learnable temperature e^tau (tau starts at 1.15, capped at e^tau <= 10 in training). The
loss is one-way (scene -> shared query set) soft-target cross-entropy against normalised
multi-hot labels; a scene counts as recognised only if every present query scores above
every absent one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from components.data.controlled_world import TokenWorld

TRAIN_SCALE_CAP = 10.0
EVAL_SCALE_CAP = 100.0


@dataclass
class ControlledModelConfig:
    """Encoder shape. The paper's example is d_model 256, 6 layers, FFN 2048, d_out 64;
    the default here (d 64, 2 layers, FFN 128) is what trains in minutes on one CPU core
    and still shows the coverage threshold on C=2 worlds."""

    d_model: int = 64  # transformer width
    num_heads: int = 4  # attention heads
    num_layers: int = 2  # transformer blocks
    ffn_dim: int = 128  # feed-forward width
    d_out: int = 64  # embedding size
    init_log_temperature: float = 1.15  # initial log of the contrastive temperature
    scene_input: str = "tokens"  # or "pixels": a timm ViT on rendered clevr scenes
    image_size: int = 64  # pixels (scene_input=pixels)
    patch_size: int = 8  # ViT patch size (scene_input=pixels)


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """Fixed sine/cosine position table (L, D), as in the paper's SceneEncoder."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq[: dim // 2])
    return table


def eos_index(tokens: torch.Tensor, eos_id: int) -> torch.Tensor:
    """Position of the EOS token per row: (B, L) -> (B,). Fails on a row without EOS."""
    is_eos = tokens == eos_id
    if not bool(is_eos.any(1).all()):
        raise ValueError("every token row must contain EOS; readout would hit PAD")
    return is_eos.int().argmax(1)


class TokenEncoder(nn.Module):
    """Pre-LN transformer over token ids; the EOS hidden state, projected, is the embedding."""

    def __init__(self, world: TokenWorld, config: ControlledModelConfig) -> None:
        super().__init__()
        self.eos_id, self.pad_id = world.eos, world.pad
        self.embed = nn.Embedding(world.vocab_size, config.d_model)
        self.register_buffer(
            "positions", sinusoidal_positions(world.seq_len, config.d_model), persistent=False
        )
        layer = nn.TransformerEncoderLayer(
            config.d_model,
            config.num_heads,
            dim_feedforward=config.ffn_dim,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.transformer = nn.TransformerEncoder(
            layer, config.num_layers, enable_nested_tensor=False
        )
        self.head = nn.Linear(config.d_model, config.d_out)
        for param in self.parameters():
            if param.dim() > 1:
                nn.init.xavier_uniform_(param)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) token ids -> (B, d_out) embedding read out at EOS."""
        length = tokens.shape[1]
        hidden = self.embed(tokens) + self.positions[:length]  # (B, L, D)
        hidden = self.transformer(hidden, src_key_padding_mask=tokens == self.pad_id)
        readout = hidden[
            torch.arange(len(tokens), device=tokens.device), eos_index(tokens, self.eos_id)
        ]
        return self.head(readout)  # (B, d_out)


def scene_encoder(world: TokenWorld, config: ControlledModelConfig) -> nn.Module:
    """The scene side named by ``config.scene_input``; the query side always reads tokens."""
    if config.scene_input == "tokens":
        return TokenEncoder(world, config)
    if config.scene_input == "pixels":
        # Imported here: token runs (the sweep's default) never load timm or the renderer.
        from components.models.controlled.controlled_pixels import PixelSceneEncoder

        return PixelSceneEncoder(
            world,
            config.d_model,
            config.num_heads,
            config.num_layers,
            config.ffn_dim,
            config.d_out,
            config.image_size,
            config.patch_size,
        )
    raise ValueError(f"scene_input must be 'tokens' or 'pixels', got {config.scene_input!r}")


class ControlledDualEncoder(nn.Module):
    """Scene encoder f and query encoder q with a shared learnable log-temperature."""

    name = "controlled"

    def __init__(self, world: TokenWorld, config: ControlledModelConfig) -> None:
        super().__init__()
        self.world = world
        self.config = config
        self.scene_encoder = scene_encoder(world, config)
        self.query_encoder = TokenEncoder(world, config)
        self.log_temperature = nn.Parameter(torch.tensor(config.init_log_temperature))

    def encode_scenes(self, objects: torch.Tensor) -> torch.Tensor:
        """(B, M) object ids, -1 = absent -> (B, d_out), from tokens or rendered pixels."""
        device = self.log_temperature.device
        if isinstance(self.scene_encoder, TokenEncoder):
            return self.scene_encoder(self.world.tokenize_scenes(objects).to(device))
        return self.scene_encoder(objects.to(device))

    def logits(
        self, scene_emb: torch.Tensor, query_emb: torch.Tensor, scale_cap: float
    ) -> torch.Tensor:
        """Scaled cosine similarity: (B, D) x (Q, D) -> (B, Q)."""
        scale = self.log_temperature.exp().clamp(max=scale_cap)
        return scale * F.normalize(scene_emb, dim=-1) @ F.normalize(query_emb, dim=-1).T

    def score(self, objects: torch.Tensor, query_tokens: torch.Tensor) -> torch.Tensor:
        """Scorer contract on controlled inputs: (B, M) scenes x (Q, Lq) queries -> (B, Q)."""
        return self.logits(
            self.encode_scenes(objects), self.query_encoder(query_tokens), EVAL_SCALE_CAP
        )


def soft_target_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Multi-positive cross-entropy against normalised multi-hot targets: (B, Q) -> scalar.

    A scene with k present queries puts 1/k target mass on each; scenes with no present
    query in the set (possible when positives are capped) are left out of the mean.
    """
    labels = labels.float()
    positives = labels.sum(1)  # (B,)
    keep = positives > 0
    targets = labels[keep] / positives[keep, None]
    return -(targets * F.log_softmax(logits[keep], dim=1)).sum(1).mean()


def recognition_correct(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Strict recognition per scene: every present query above every absent one.

    (B, Q) -> (B',) bool over the scenes with >= 1 present query. A scene with no absent
    query is trivially correct.
    """
    keep = labels.any(1)
    logits, labels = logits[keep], labels[keep]
    lowest_present = torch.where(labels, logits, torch.inf).min(1).values
    highest_absent = torch.where(labels, -torch.inf, logits).max(1).values
    return lowest_present > highest_absent


def recognition_chance(labels: torch.Tensor) -> float:
    """Expected strict accuracy of a random ranking: mean over scenes of 1 / C(Q, k)."""
    labels = labels[labels.any(1)]
    num_queries = labels.shape[1]
    counts = labels.sum(1).tolist()
    return float(sum(1.0 / math.comb(num_queries, int(k)) for k in counts) / max(len(counts), 1))


def distinct_count(ids: torch.Tensor) -> torch.Tensor:
    """Distinct non-negative ids per row: (B, M) with -1 = absent -> (B,)."""
    ordered = ids.sort(1).values  # -1 sorts first
    fresh = (ordered[:, 1:] != ordered[:, :-1]) & (ordered[:, 1:] >= 0)
    return (ordered[:, 0] >= 0).long() + fresh.sum(1)


def bag_of_concepts_chance(world: TokenWorld, objects: torch.Tensor) -> torch.Tensor:
    """Strict object accuracy per scene of a model that knows every concept but binds none.

    Such a model scores alike every object whose values each occur in the scene, so the
    present objects come first only by the luck of the tie: 1 / C(consistent, present).
    Two C=2 objects that differ in both concepts give 1/6, one object gives 1. Held-out
    accuracy above this level is binding; below it, not even the concepts transfer.
    (B, M) object ids, -1 = absent -> (B,).
    """
    values = torch.where((objects >= 0)[..., None], world.object_values(objects), -1)  # (B,M,C)
    consistent = torch.stack(
        [distinct_count(values[..., c]) for c in range(world.num_concepts)]
    ).prod(0)  # (B,)
    present = distinct_count(objects)
    return torch.tensor(
        [1.0 / math.comb(k, p) for k, p in zip(consistent.tolist(), present.tolist(), strict=True)]
    )


def object_labels(objects: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
    """Which object queries a scene contains, by exact tuple match: (B, M), (Q,) -> (B, Q)."""
    return (objects[:, :, None] == queries[None, None, :]).any(1)


def concept_labels(world: TokenWorld, objects: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
    """Which concept-token queries occur in a scene: (B, M), (Q,) -> (B, Q)."""
    tokens = world.concept_tokens(objects)  # (B, M, C)
    tokens = torch.where((objects >= 0)[..., None], tokens, -1).flatten(1)  # (B, M*C)
    return (tokens[:, :, None] == queries[None, None, :]).any(1)
