"""Presence classifier: a ViT trained to say which objects, or which features, a scene holds.

The backbone that "Formalizing the Binding Problem" (arXiv 2606.03976) contrasts: supervised
by *object* presence (a multi-label target over the world's objects O = feature
conjunctions, e.g. "red circle"), the image tower must bind colour to shape, because two
scenes with the same colours and shapes can differ in which colour sits on which shape;
supervised by *feature* presence (a multi-label target over individual values: colours and
shapes separately), it never has to. Probing both with ``probe_binding`` asks whether
binding bits follow the supervision.

    logits = W · encode_image(x) + b          (B, L), L = |O| or the number of feature values
    loss   = mean BCE(logits, code)            code = the row's object_code or feature_code

Only the image tower trains: the text tower and the temperature get no gradient from this
loss, so they are frozen (and kept, so the checkpoint rebuilds the same Backbone).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from components.models.backbone import Backbone
from components.models.batching import CollatedModel, row_pixels
from components.models.param_groups import split_param_groups

TARGET_COLUMNS = {"objects": "object_code", "features": "feature_code"}


def presence_targets(rows: list[dict[str, Any]], column: str) -> torch.Tensor:
    """(B, L) float 0/1 from each row's multi-hot code; a missing or ragged code names its row."""
    codes = []
    for i, row in enumerate(rows):
        code = row.get(column)
        if code is None:
            raise ValueError(f"row {i} (id={row.get('id')!r}) has no {column}")
        codes.append(torch.as_tensor(list(code), dtype=torch.float32))
    lengths = {len(c) for c in codes}
    if len(lengths) > 1:
        raise ValueError(f"{column} lengths differ within a batch: {sorted(lengths)}")
    return torch.stack(codes)


class PresenceCollator:
    """Shard rows (pixels or image bytes, object/feature code) -> {"images", "targets"}."""

    def __init__(self, transform, column: str) -> None:
        self.transform, self.column = transform, column

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return {
            "images": row_pixels(rows, self.transform),  # (B, 3, H, W)
            "targets": presence_targets(rows, self.column),  # (B, L)
        }


class PresenceClassifier(CollatedModel, nn.Module):
    """Backbone image tower + one linear multi-label head over object or feature presence."""

    name = "presence"

    def __init__(
        self,
        backbone: Backbone,
        target: str = "objects",
        num_labels: int = 64,
        train_augment: bool = False,
    ) -> None:
        super().__init__()
        if target not in TARGET_COLUMNS:
            raise ValueError(f"target must be one of {sorted(TARGET_COLUMNS)}, got {target!r}")
        if num_labels < 1:
            raise ValueError(f"num_labels must be >= 1, got {num_labels}")
        self.backbone = backbone
        for name, param in backbone.model.named_parameters():
            if not name.startswith("visual."):  # text tower and logit_scale: no gradient here
                param.requires_grad_(False)
        self.head = nn.Linear(backbone.embed_dim, num_labels)
        self.options = {"target": target, "num_labels": num_labels, "train_augment": train_augment}
        self.column = TARGET_COLUMNS[target]
        self.collator = PresenceCollator(backbone.make_transform(train=train_augment), self.column)
        self.eval_collator = PresenceCollator(backbone.preprocess, self.column)

    @property
    def config(self) -> dict[str, Any]:
        return {"backbone": dict(self.backbone.config), **self.options}

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, L) presence logits from the pooled image embedding."""
        return self.head(self.backbone.encode_image(images).float())

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Mean binary cross-entropy over labels and images, with label and exact accuracy."""
        device = self.head.weight.device
        targets = batch["targets"].to(device)
        logits = self.logits(batch["images"].to(device))
        if logits.shape != targets.shape:
            raise ValueError(
                f"{self.column} has {targets.shape[-1]} labels, the head {logits.shape[-1]}"
            )
        bce = F.binary_cross_entropy_with_logits(logits, targets)
        correct = (logits.detach() > 0) == (targets > 0.5)  # (B, L)
        parts = {
            "loss": float(bce.detach()),
            "label_accuracy": float(correct.float().mean()),
            "exact_accuracy": float(correct.all(1).float().mean()),
        }
        return bce, parts

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Same as ``loss``: lets a DDP wrapper's forward (and its gradient hooks) run it."""
        return self.loss(batch)

    def param_groups(self, backbone_lr: float, head_lr: float, weight_decay: float) -> list[dict]:
        """Image tower at backbone_lr, the head at head_lr; frozen text tower in no group."""
        return split_param_groups(self, backbone_lr, head_lr, weight_decay)
