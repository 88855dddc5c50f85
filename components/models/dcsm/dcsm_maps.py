"""Dense cosine similarity maps (DCSM) and their functional rows (docs/methods/dcsm.md 1.1-1.3).

A map is the cosine grid between one image's tokens and one text's tokens, (Ni, Lt): rows
are image tokens (CLS at row 0, then patches row-major), columns are text positions (BOS at
column 0, padding kept). Columns of functional words (spatial, size, negation) carry no
visual evidence, so they are replaced by fixed random signatures, one per lexicon word.

Unlike the reference (whitespace split, first occurrence, an off-by-one onto the previous
token), words are aligned to tokens the tokenizer's own way: the cleaned caption is split
with the tokenizer's word pattern and each word is BPE-encoded alone, which gives the span of
every sub-token of every word (checked against encoding the whole caption).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

# The paper's 11 words (docs/methods/dcsm.md 1.2) plus the 3D spatial words our worlds use and "large".
DEFAULT_LEXICON: dict[str, list[str]] = {
    "spatial": ["above", "below", "left", "right", "behind", "front"],
    "size": ["small", "big", "large"],
    "negation": ["not", "no", "without", "but", "absent"],
}
NORMALIZATIONS = ("per_map", "batch")


def default_lexicon() -> list[str]:
    """The default functional words, group by group."""
    return [word for words in DEFAULT_LEXICON.values() for word in words]


def word_spans(tokenizer: Any, text: str) -> list[tuple[str, int, int]]:
    """(word, start, end) token positions of each word of ``text``; position 0 is BOS.

    Needs an open_clip SimpleTokenizer-like object (``pat``, ``clean_fn``, ``encode``).
    """
    pattern, clean = getattr(tokenizer, "pat", None), getattr(tokenizer, "clean_fn", None)
    if pattern is None or clean is None:
        raise NotImplementedError(
            f"word-to-token alignment needs open_clip's SimpleTokenizer, got {type(tokenizer).__name__}"
        )
    spans, position = [], 1
    for word in pattern.findall(clean(text)):
        length = len(tokenizer.encode(word))
        spans.append((word, position, position + length))
        position += length
    if position - 1 != len(tokenizer.encode(text)):
        raise ValueError(f"caption {text!r}: word-by-word BPE does not match whole-caption BPE")
    return spans


def functional_columns(
    tokenizer: Any, texts: Sequence[str], lexicon: Sequence[str], context_length: int
) -> torch.Tensor:
    """(T, Lt) long: k + 1 where the column is a sub-token of lexicon word k, else 0.

    Every occurrence of a word is marked, every sub-token of it; positions cut by truncation
    (the last column holds EOT) are left alone.
    """
    index = {word.lower(): k for k, word in enumerate(lexicon)}
    columns = torch.zeros(len(texts), context_length, dtype=torch.long)
    last = context_length - 1  # the tokenizer puts EOT here when it truncates
    for t, text in enumerate(texts):
        for word, start, end in word_spans(tokenizer, text):
            k = index.get(word.lower())
            if k is not None and start < last:
                columns[t, start : min(end, last)] = k + 1
    return columns


def functional_signatures(num_words: int, num_image_tokens: int, seed: int) -> torch.Tensor:
    """(W, Ni) fixed signatures: (L2-normalised N(0, 1) + 1) / 3, as the reference draws them."""
    generator = torch.Generator().manual_seed(seed)
    vectors = torch.randn(num_words, num_image_tokens, generator=generator)
    return (F.normalize(vectors, dim=-1) + 1) / 3


def similarity_maps(image_tokens: torch.Tensor, text_tokens: torch.Tensor) -> torch.Tensor:
    """(I, Ni, D) x (T, Lt, D) unit tokens -> (I, T, Ni, Lt) cosines."""
    return torch.einsum("ind,tld->itnl", image_tokens, text_tokens)


def replace_functional(
    maps: torch.Tensor, columns: torch.Tensor, signatures: torch.Tensor
) -> torch.Tensor:
    """Overwrite functional columns of (I, T, Ni, Lt) maps with their word's (Ni,) signature."""
    table = torch.cat([signatures.new_zeros(1, signatures.shape[1]), signatures])  # (1 + W, Ni)
    replacement = table.to(maps.dtype)[columns].permute(0, 2, 1)  # (T, Ni, Lt)
    is_functional = (columns > 0)[:, None, :]  # (T, 1, Lt)
    return torch.where(is_functional, replacement, maps)  # broadcast over images


def normalize_maps(maps: torch.Tensor, mode: str = "per_map", eps: float = 1e-6) -> torch.Tensor:
    """z-score each (Ni, Lt) map on its own ("per_map"), or the whole batch at once ("batch").

    "batch" is the reference's ``standardize``: a score then depends on the other candidates
    scored with it; "per_map" makes every (image, text) score independent of the rest.
    """
    if mode == "per_map":
        mean = maps.mean(dim=(-2, -1), keepdim=True)
        std = maps.std(dim=(-2, -1), keepdim=True)
    elif mode == "batch":
        mean, std = maps.mean(), maps.std()
    else:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {mode!r}")
    return (maps - mean) / (std + eps)
