"""Shard rows -> batch tensors, shared by every model that reads images (CLIP, OC-CLIP, presence).

A model keeps two collators, one with its training transform (augmentation when asked) and one
with the backbone's evaluation transform; ``CollatedModel`` gives it ``collate`` and
``image_transform`` from them, so the Ray Data decode stage (training/decode.py)
and the model's own collate always agree on pixels.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

import torch
from PIL import Image


def decode_image(image: Any) -> Image.Image:
    """PNG/JPEG bytes (a shard's image column) or a PIL image -> RGB PIL image."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, bytes | bytearray | memoryview):
        return Image.open(io.BytesIO(bytes(image))).convert("RGB")
    raise TypeError(f"image must be PNG/JPEG bytes or a PIL image, got {type(image).__name__}")


def trim_padding(tokens: torch.Tensor, pad_id: int) -> torch.Tensor:
    """(n, L) token ids -> (n, L') without the trailing columns that are padding in every row.

    Exact for a causal text tower (no position attends to later ones; Backbone pads a
    non-causal one back to its full context), and a batch of short captions or phrases
    costs its own length, not the context's."""
    if tokens.shape[0] == 0:
        return tokens
    return tokens[:, : int((tokens != pad_id).any(0).nonzero().max()) + 1]


def row_pixels(rows: Sequence[dict[str, Any]], transform) -> torch.Tensor:
    """(B, 3, H, W) from rows with ready ``pixels`` (decoded by the Ray Data stage,
    training/decode.py) or with ``image`` bytes decoded and transformed here."""
    if rows and "pixels" in rows[0]:
        return torch.stack([torch.as_tensor(row["pixels"]) for row in rows])
    return torch.stack([transform(decode_image(row["image"])) for row in rows])


class ImageTextCollator:
    """Shared state of a collator over images and tokenized text. Plain state (tokenizer,
    transform): picklable."""

    def __init__(self, tokenizer, transform, context_length: int) -> None:
        self.tokenizer, self.transform, self.context_length = tokenizer, transform, context_length

    def images(self, images: Sequence[Any]) -> torch.Tensor:
        return torch.stack([self.transform(decode_image(im)) for im in images])  # (B, 3, H, W)


class CollatedModel:
    """``collate`` and ``image_transform`` of a model holding ``collator`` (training transform)
    and ``eval_collator`` (the backbone's evaluation transform)."""

    collator: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]]
    eval_collator: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]]

    def collate(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Shard rows (image bytes or decoded pixels, and what the model reads) -> CPU tensors."""
        return self.collator(rows)

    def image_transform(self, train: bool = True):
        """PIL -> pixels as training (or evaluation) sees them, for the Ray Data decode stage."""
        return (self.collator if train else self.eval_collator).transform
