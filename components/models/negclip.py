"""NegCLIP: CLIP fine-tuned with hard-negative captions in its batch (Yuksekgonul+ 2023).

The baseline both papers compare against. Same Backbone, data and scorer as CLIP; the only
change is the batch: each row adds one of its shard's hard-negative captions (a swapped or
replaced attribute or relation, a negation) as an extra text column. Image -> text
cross-entropy runs over the B captions plus the B negatives, so each image must prefer its
caption to its own near-miss; text -> image stays over the B captions, as in NegCLIP.
A negative with its own ``positive_caption`` (negation items) brings that caption as the
row's positive, so the pair differs in exactly the negated word.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import torch
import torch.nn.functional as F

from components.models.backbone import Backbone
from components.models.clip import CLIP, CaptionCollator
from components.models.losses import logit_scale_value

NEGATIVE_TEXT = pa.list_(
    pa.struct([("kind", pa.string()), ("caption", pa.string()), ("positive_caption", pa.string())])
)


def negative_texts(table: pa.Table) -> pa.Table:
    """A shard batch whose ``negatives`` keep only (kind, caption, positive_caption).

    A Ray Data ``map_batches`` stage: NegCLIP reads the negatives' text, so their
    counterfactual images (PNG bytes) never travel to the training worker.
    """
    fields = [f.name for f in NEGATIVE_TEXT.value_type]
    slim = [
        None if row is None else [{k: n.get(k) for k in fields} for n in row]
        for row in table.column("negatives").to_pylist()
    ]
    index = table.column_names.index("negatives")
    return table.set_column(index, "negatives", pa.array(slim, type=NEGATIVE_TEXT))


def hard_negative_infonce(
    logits: torch.Tensor, negative_logits: torch.Tensor, negative_valid: torch.Tensor
) -> torch.Tensor:
    """NegCLIP's loss: logits (B, B) image x caption, negative_logits (B, B) image x negative.

    Image -> text over [captions; valid negatives] (B, 2B); text -> image over captions only.
    """
    logits, negative_logits = logits.float(), negative_logits.float()
    target = torch.arange(logits.shape[0], device=logits.device)
    negative_logits = negative_logits.masked_fill(~negative_valid[None, :], float("-inf"))
    image_to_text = F.cross_entropy(torch.cat([logits, negative_logits], dim=1), target)
    return 0.5 * (image_to_text + F.cross_entropy(logits.T, target))


class NegativeCaptionCollator(CaptionCollator):
    """Rows -> images, caption tokens and one hard-negative caption per row (or none)."""

    def __init__(
        self, tokenizer, transform, context_length: int, kinds: Sequence[str] | None, seed: int
    ) -> None:
        super().__init__(tokenizer, transform, context_length)
        self.kinds = set(kinds) if kinds else None
        self.rng = random.Random(seed)

    def pair(self, row: dict[str, Any]) -> tuple[str, str | None]:
        """(positive caption, hard-negative caption) for one row, a negative drawn at random."""
        negatives = [
            n for n in row.get("negatives") or [] if self.kinds is None or n["kind"] in self.kinds
        ]
        if not negatives:
            return row["caption"], None
        chosen = self.rng.choice(negatives)
        return chosen.get("positive_caption") or row["caption"], chosen["caption"]

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = super().__call__(rows)  # validates captions, encodes images
        pairs = [self.pair(row) for row in rows]
        batch["text_tokens"] = self.texts([positive for positive, _ in pairs])
        batch["negative_tokens"] = self.texts([negative or "" for _, negative in pairs])
        batch["negative_valid"] = torch.tensor([negative is not None for _, negative in pairs])
        return batch


class NegCLIP(CLIP):
    """CLIP whose training batch carries hard-negative captions; scores like CLIP."""

    name = "negclip"

    def __init__(
        self,
        backbone: Backbone,
        context_length: int | None = None,
        train_augment: bool = False,
        negative_kinds: Sequence[str] | None = None,
        negative_seed: int = 0,
    ) -> None:
        super().__init__(backbone, context_length, train_augment)
        kinds = list(negative_kinds) if negative_kinds else None
        self.options.update({"negative_kinds": kinds, "negative_seed": negative_seed})
        self.collator = NegativeCaptionCollator(
            backbone.tokenizer,
            backbone.make_transform(train=train_augment),
            self.options["context_length"],
            kinds,
            negative_seed,
        )

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """hard_negative_infonce over the (B, B) caption and (B, B) negative cosines."""
        device = self.logit_scale.device
        image, text = self.embed(batch["images"].to(device), batch["text_tokens"].to(device))
        negative = F.normalize(
            self.backbone.encode_text(batch["negative_tokens"].to(device)).float(), dim=-1
        )
        scale = logit_scale_value(self.logit_scale)
        loss = hard_negative_infonce(
            scale * image @ text.T, scale * image @ negative.T, batch["negative_valid"].to(device)
        )
        value = float(loss.detach())
        return loss, {"loss": value, "itc": value, "logit_scale": float(scale.detach())}
