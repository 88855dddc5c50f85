"""OC-CLIP's options as a typed config block, so a mistyped option fails at parse time.

A pipeline config used to carry ``occlip: dict``: ``occlip.dpeth=3`` was accepted and only
failed inside the Ray Train worker. ``OCCLIP(backbone, options)`` takes this object, so these
defaults are the model's only ones; a checkpoint's config.json stores its fields flat and
``build_occlip`` rebuilds the object from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from components.platform.config import check


@dataclass
class OcclipOptions:
    """OC-CLIP binding module and loss options (components/models/occlip/occlip.py)."""

    binding_dim: int | None = None  # width of the binding module; None = backbone's embed dim
    depth: int = 2  # cross-attention layers of the binding module
    heads: int = 4  # attention heads of the binding module
    num_default_tokens: int = 4  # learned default slots that absorb unmatched patches
    d_obj: int = 128  # object slot width in the structured score
    d_rel: int = 128  # relation head width
    image_layer: int = -1  # backbone block whose patch tokens the slots read
    phrase_context_length: int = 16  # text tokens per node / relation phrase
    rel_negatives: int = 4  # swapped-relation negatives per caption in L_rel
    itc_weight: float = 1.0  # weight of the image-text contrastive loss
    rel_weight: float = 1.0  # weight of the relation loss L_rel (0 = ablate)
    graph_chunk: int | None = None  # graphs scored per chunk (memory); None = all at once
    competitive: bool = True  # competitive (softmax over slots) attention, as in the paper
    patch_positions: bool = True  # add position embeddings to the patch tokens
    query_residual: bool = True  # residual connection around the slot queries
    relation_head: Literal["additive", "joint"] = "additive"  # joint: one MLP over [r; S_s; S_o]
    init_logit_scale: float = 1 / 0.07  # CLIP's initial logit scale (temperature 0.07)
    train_augment: bool = False  # random crops and flips of training images
    negation: Literal["subtract", "ignore"] = "subtract"  # how negated phrases change the score

    def validate(self) -> None:
        for key in ("depth", "heads", "d_obj", "d_rel", "phrase_context_length"):
            check(getattr(self, key) > 0, key, getattr(self, key), "an integer > 0")
        check(self.num_default_tokens >= 0, "num_default_tokens", self.num_default_tokens, ">= 0")
        check(self.rel_negatives >= 0, "rel_negatives", self.rel_negatives, ">= 0")
