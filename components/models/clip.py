"""CLIP baseline: pooled cosine between image and caption embeddings of the same Backbone.

Trained with the symmetric InfoNCE loss over the batch and the backbone's own learnable
temperature (open_clip's ``logit_scale``: the pretrained value when weights are loaded,
1/0.07 otherwise; clamped to 100). A SceneGraph text is read back as a caption
(``graph_caption``), so CLIP and OC-CLIP can be scored on the same benchmark items.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from components.models.backbone import Backbone
from components.models.batching import CollatedModel, ImageTextCollator, row_pixels, trim_padding
from components.models.losses import logit_scale_value, symmetric_infonce
from components.models.param_groups import split_param_groups
from components.parsing.scene_graph import SceneGraph


def graph_caption(graph: SceneGraph) -> str:
    """A caption for a graph: its triples, then the objects no relation mentions."""
    phrases = [("no " if o.negated else "") + o.phrase() for o in graph.objects]
    mentioned = {i for r in graph.relations for i in (r.subject, r.object)}
    parts = [f"{phrases[r.subject]} {r.predicate} {phrases[r.object]}" for r in graph.relations]
    parts += [p for i, p in enumerate(phrases) if i not in mentioned]
    return " and ".join(parts)


class CaptionCollator(ImageTextCollator):
    """Shard rows -> {"images", "text_tokens"}. Plain state (tokenizer, transform): picklable."""

    def texts(self, texts: Sequence[str]) -> torch.Tensor:
        return self.tokenizer(list(texts), context_length=self.context_length)  # (B, L)

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        for i, row in enumerate(rows):
            if not isinstance(row.get("caption"), str):
                raise ValueError(f"row {i} (id={row.get('id')!r}) has no caption string")
        return {
            "images": row_pixels(rows, self.transform),
            "text_tokens": self.texts([row["caption"] for row in rows]),
        }


class CLIP(CollatedModel, nn.Module):
    """Dual encoder over a Backbone; a Scorer and a trainable model."""

    name = "clip"

    def __init__(
        self, backbone: Backbone, context_length: int | None = None, train_augment: bool = False
    ) -> None:
        super().__init__()
        self.backbone = backbone
        context_length = min(context_length or backbone.context_length, backbone.context_length)
        self.options = {"context_length": context_length, "train_augment": train_augment}
        self.collator = CaptionCollator(
            backbone.tokenizer, backbone.make_transform(train=train_augment), context_length
        )
        self.eval_collator = CaptionCollator(
            backbone.tokenizer, backbone.preprocess, context_length
        )

    @property
    def config(self) -> dict[str, Any]:
        return {"backbone": dict(self.backbone.config), **self.options}

    @property
    def logit_scale(self) -> nn.Parameter:
        return self.backbone.model.logit_scale

    def embed(
        self, images: torch.Tensor, tokens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit-norm float32 image (I, D) and text (T, D) embeddings."""
        image = F.normalize(self.backbone.encode_image(images).float(), dim=-1)
        tokens = trim_padding(tokens, self.backbone.pad_id)  # (T, longest caption)
        text = F.normalize(self.backbone.encode_text(tokens).float(), dim=-1)
        return image, text

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Symmetric InfoNCE over the (B, B) cosine matrix scaled by the learned temperature."""
        device = self.logit_scale.device
        image, text = self.embed(batch["images"].to(device), batch["text_tokens"].to(device))
        scale = logit_scale_value(self.logit_scale)
        itc = symmetric_infonce(scale * image @ text.T)
        parts = {
            "loss": float(itc.detach()),
            "itc": float(itc.detach()),
            "logit_scale": float(scale.detach()),
        }
        return itc, parts

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Same as ``loss``: lets a DDP wrapper's forward (and its gradient hooks) run it."""
        return self.loss(batch)

    def param_groups(self, backbone_lr: float, head_lr: float, weight_decay: float) -> list[dict]:
        """Towers at backbone_lr; the temperature (the only new head) at head_lr, undecayed."""
        return split_param_groups(self, backbone_lr, head_lr, weight_decay)

    @torch.no_grad()
    def score(
        self,
        images: Sequence[Image.Image],
        texts: Sequence[str | SceneGraph],
        batch_size: int = 256,
    ) -> torch.Tensor:
        """Cosine of pooled embeddings: (n_images, n_texts), float32 on CPU."""
        was_training = self.training
        self.eval()
        try:
            device = self.logit_scale.device
            captions = [t if isinstance(t, str) else graph_caption(t) for t in texts]
            text = torch.cat(
                [
                    F.normalize(
                        self.backbone.encode_text(
                            self.eval_collator.texts(captions[t0 : t0 + batch_size]).to(device)
                        ).float(),
                        dim=-1,
                    )
                    for t0 in range(0, len(captions), batch_size)
                ]
                or [torch.zeros(0, self.backbone.embed_dim, device=device)]
            )
            rows = []
            for i0 in range(0, len(images), batch_size):
                pixels = self.eval_collator.images(images[i0 : i0 + batch_size]).to(device)
                image = F.normalize(self.backbone.encode_image(pixels).float(), dim=-1)
                rows.append((image @ text.T).float().cpu())
            return torch.cat(rows) if rows else torch.zeros(0, len(texts))
        finally:
            self.train(was_training)
