"""Dense tokens of a frozen Backbone, and the fp16 byte format they are stored in.

DCSM (arXiv 2503.08723) reads every image token (CLS + patches) and every text position,
each after the tower's final LayerNorm and projection, L2-normalised. Computed here from a
Backbone; cached once per backbone by training/feature_cache.py, which stores
them as raw little-endian fp16 bytes (``encode_array``/``decode_array``) so a cache is plain
Parquet that pyarrow alone reads.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from components.models.backbone import Backbone


def encode_array(array: np.ndarray | torch.Tensor) -> bytes:
    """An array as raw little-endian fp16 bytes (the cache's storage format)."""
    if torch.is_tensor(array):
        array = array.detach().float().cpu().numpy()
    return np.ascontiguousarray(array, dtype="<f2").tobytes()


def decode_array(blob: bytes, shape: Sequence[int], where: str = "") -> np.ndarray:
    """fp16 bytes back into an array of ``shape``; a size mismatch names ``where``."""
    array = np.frombuffer(blob, dtype="<f2")
    if array.size != int(np.prod(shape)):
        raise ValueError(
            f"{where or 'feature blob'}: {array.size} fp16 values, expected shape {tuple(shape)} "
            "(a cache built with another backbone or context length?)"
        )
    return array.reshape(shape)


def num_image_tokens(backbone: Backbone) -> int:
    """Ni = class token + patches of the backbone's ViT at its image size."""
    grid = backbone.model.visual.grid_size
    return backbone.num_prefix_tokens + int(grid[0]) * int(grid[1])


@torch.no_grad()
def dense_image_tokens(backbone: Backbone, pixels: torch.Tensor, layer: int = -1) -> torch.Tensor:
    """(B, Ni, D) float32, CLS first, post-LN + projection + per-token L2 norm."""
    _, tokens = backbone.image_tokens(pixels, layer=layer)
    return F.normalize(tokens.float(), dim=-1)


@torch.no_grad()
def dense_text_tokens(
    backbone: Backbone, tokens: torch.Tensor, layer: int = -1
) -> tuple[torch.Tensor, torch.Tensor]:
    """((B, L, D) float32 after ln_final + projection + L2 norm, mask (B, L) real tokens)."""
    _, projected, mask = backbone.text_tokens(tokens, layer=layer)
    return F.normalize(projected.float(), dim=-1), mask
