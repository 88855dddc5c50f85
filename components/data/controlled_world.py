"""The controlled token world of "How can embedding models bind concepts?" (arXiv 2605.31503).

An object is a tuple of C concept values, each in {0..V-1}; its index is mixed radix with
the first concept slowest (the same convention as `components.data.concepts.ConceptSpace`).
A scene is an ordered list of 1..M objects, drawn with replacement. Tokens follow the
paper's released code: concept c's value v is token ``c*V + v``, so concepts never share
ids; then SOO, EOO, EOS, PAD. A scene reads ``SOO v1 v2+V .. EOO`` per object, then EOS,
then PAD up to ``(C+2)*M + 1``. Queries are ``[token, EOS]`` for a concept and
``[SOO .. EOO, EOS]`` for an object, so encoders always read out at EOS.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from components.data.concepts import ConceptSpace


@dataclass(frozen=True)
class TokenWorld:
    """C concepts x V values, up to M objects per scene; owns every token id."""

    num_concepts: int
    num_values: int
    max_objects: int = 2

    def __post_init__(self) -> None:
        if self.num_concepts < 1 or self.num_values < 2 or self.max_objects < 1:
            raise ValueError(
                f"TokenWorld needs C >= 1, V >= 2, M >= 1; got C={self.num_concepts}, "
                f"V={self.num_values}, M={self.max_objects}"
            )

    @property
    def name(self) -> str:
        return f"C{self.num_concepts}V{self.num_values}"

    @property
    def num_objects(self) -> int:
        return self.num_values**self.num_concepts

    @property
    def num_concept_tokens(self) -> int:
        return self.num_concepts * self.num_values

    @property
    def soo(self) -> int:
        return self.num_concept_tokens

    @property
    def eoo(self) -> int:
        return self.num_concept_tokens + 1

    @property
    def eos(self) -> int:
        return self.num_concept_tokens + 2

    @property
    def pad(self) -> int:
        return self.num_concept_tokens + 3

    @property
    def vocab_size(self) -> int:
        return self.num_concept_tokens + 4

    @property
    def seq_len(self) -> int:
        return (self.num_concepts + 2) * self.max_objects + 1

    def concept_space(self) -> ConceptSpace:
        """The same objects as a ConceptSpace, so `coverage_split` indexes them identically."""
        return ConceptSpace.from_mapping(
            {
                f"c{c}": [f"c{c}v{v}" for v in range(self.num_values)]
                for c in range(self.num_concepts)
            }
        )

    def object_values(self, objects: torch.Tensor) -> torch.Tensor:
        """Concept values of object ids: (...) -> (..., C), first concept slowest."""
        radix = self.num_values ** torch.arange(
            self.num_concepts - 1, -1, -1, device=objects.device
        )  # (C,)
        return (objects.clamp(min=0)[..., None] // radix) % self.num_values

    def values_to_objects(self, values: torch.Tensor) -> torch.Tensor:
        """Inverse of `object_values`: (..., C) -> (...)."""
        radix = self.num_values ** torch.arange(
            self.num_concepts - 1, -1, -1, device=values.device
        )  # (C,)
        return (values * radix).sum(-1)

    def concept_tokens(self, objects: torch.Tensor) -> torch.Tensor:
        """Token ids ``c*V + v`` of each object's concept values: (...) -> (..., C)."""
        offsets = self.num_values * torch.arange(self.num_concepts, device=objects.device)
        return self.object_values(objects) + offsets

    def tokenize_scenes(self, objects: torch.Tensor) -> torch.Tensor:
        """Scene tokens: (B, M) object ids, -1 = absent (left-aligned) -> (B, L) tokens."""
        batch, slots = objects.shape
        if slots != self.max_objects:
            raise ValueError(f"objects has {slots} slots, world expects M={self.max_objects}")
        present = objects >= 0  # (B, M)
        blocks = torch.cat(
            [
                torch.full((batch, slots, 1), self.soo, device=objects.device),
                self.concept_tokens(objects),
                torch.full((batch, slots, 1), self.eoo, device=objects.device),
            ],
            dim=-1,
        )  # (B, M, C+2)
        blocks = torch.where(present[..., None], blocks, self.pad)
        tokens = torch.full((batch, self.seq_len), self.pad, device=objects.device)
        tokens[:, : slots * (self.num_concepts + 2)] = blocks.reshape(batch, -1)
        eos_index = present.sum(1) * (self.num_concepts + 2)  # (B,)
        tokens[torch.arange(batch, device=objects.device), eos_index] = self.eos
        return tokens

    def object_queries(self, objects: torch.Tensor) -> torch.Tensor:
        """Object query tokens ``[SOO, tokens.., EOO, EOS]``: (Q,) -> (Q, C+3)."""
        count = objects.shape[0]
        column = torch.ones((count, 1), dtype=torch.long, device=objects.device)
        return torch.cat(
            [
                column * self.soo,
                self.concept_tokens(objects),
                column * self.eoo,
                column * self.eos,
            ],
            dim=1,
        )

    def concept_queries(self, tokens: torch.Tensor) -> torch.Tensor:
        """Concept query tokens ``[token, EOS]``: (Q,) -> (Q, 2)."""
        return torch.stack([tokens, torch.full_like(tokens, self.eos)], dim=1)

    def sample_scenes(
        self, allowed: torch.Tensor, batch: int, generator: torch.Generator
    ) -> torch.Tensor:
        """Scenes of m ~ U{1..M} objects drawn with replacement from ``allowed``: (B, M), -1 pad.

        Fresh scenes every step, as in the paper: training data is unlimited, so coverage
        is the only thing restricting what the model sees.
        """
        counts = torch.randint(1, self.max_objects + 1, (batch,), generator=generator)
        picks = torch.randint(0, len(allowed), (batch, self.max_objects), generator=generator)
        objects = allowed[picks]
        slot = torch.arange(self.max_objects)[None, :]
        return torch.where(slot < counts[:, None], objects, -1)

    def attribute_swaps(self, objects: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One attribute-swap hard negative per scene with >= 2 objects: (B, M) -> (S,).

        Take objects i != k of the scene and a random concept c; copy c's value from k
        into i (red cube + blue sphere -> blue cube). Labels are recomputed by the caller,
        so a swap that equals a present object counts as a positive.
        """
        counts = (objects >= 0).sum(1)  # (B,)
        rows = torch.nonzero(counts >= 2).squeeze(1)
        if rows.numel() == 0:
            return torch.empty(0, dtype=torch.long, device=objects.device)
        n = counts[rows]
        first = (torch.rand(len(rows), generator=generator) * n).long()
        other = (first + 1 + (torch.rand(len(rows), generator=generator) * (n - 1)).long()) % n
        concept = torch.randint(0, self.num_concepts, (len(rows),), generator=generator)
        target = self.object_values(objects[rows, first])  # (S, C)
        source = self.object_values(objects[rows, other])  # (S, C)
        index = torch.arange(len(rows))
        target[index, concept] = source[index, concept]
        return self.values_to_objects(target)
