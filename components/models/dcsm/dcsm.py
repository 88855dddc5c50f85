"""DCSM: a small CNN scores the dense cosine map of image tokens x text tokens (arXiv 2503.08723).

The backbone is frozen; only the scorer head trains. Training runs on cached dense features
(training/feature_cache.py), so ``collate`` takes feature-cache rows (FEATURE_SCHEMA),
while ``score`` runs the backbone on raw images and texts (the Scorer protocol):

    image tokens (I, Ni, D), text tokens (T, Lt, D)       unit norm, CLS / BOS first
    maps   = cos grid                     (I, T, Ni, Lt)  rows: image tokens, columns: text
    maps[:, t, :, l] = signature[word]    functional words (spatial, size, negation)
    maps   = z-score per map (default) or over the whole batch (reference)
    scores = head(maps)                   (I, T)

Loss (docs/methods/dcsm.md 1.6): rows are B images + the hard-negative (counterfactual) images, columns
are B captions + B hard-negative captions; symmetric cross-entropy over the raw scores, no
temperature. A negative caption without an image (negation) is a column only.

``in_batch_negatives=False`` keeps only each scene's own block of that matrix (its image and
counterfactual image against its caption and hard negative). Other scenes' captions are easy
negatives that cost a map each and teach nothing about binding: the full matrix grows with
B^2 and a CPU budget of batch 8 then sees one hard negative per scene per step, while the
block costs O(B) and lets the batch grow to 64.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from components.models.backbone import Backbone
from components.models.batching import decode_image
from components.models.clip import graph_caption
from components.models.dcsm.dcsm_heads import build_head
from components.models.dcsm.dcsm_maps import (
    NORMALIZATIONS,
    default_lexicon,
    functional_columns,
    functional_signatures,
    normalize_maps,
    replace_functional,
    similarity_maps,
)
from components.models.dense_tokens import (
    decode_array,
    dense_image_tokens,
    dense_text_tokens,
    num_image_tokens,
)
from components.models.param_groups import split_param_groups
from components.parsing.scene_graph import SceneGraph


class DCSM(nn.Module):
    """Frozen Backbone + fixed functional signatures + a trainable map scorer; a Scorer."""

    name = "dcsm"

    def __init__(
        self,
        backbone: Backbone,
        context_length: int = 30,
        lexicon: Sequence[str] | None = None,
        signature_seed: int = 15,
        normalize: str = "per_map",
        head: str = "cnn",
        pool: Sequence[int] = (16, 16),
        channels: int = 4,
        hidden: int = 128,
        dropout: float = 0.1,
        logit_dropout: bool = True,
        negative_kinds: Sequence[str] | None = None,
        in_batch_negatives: bool = True,
    ) -> None:
        super().__init__()
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
        self.backbone = backbone.eval().requires_grad_(False)
        context_length = min(int(context_length), backbone.context_length)
        lexicon = [w.lower() for w in (default_lexicon() if lexicon is None else lexicon)]
        self.map_size = (num_image_tokens(backbone), context_length)  # (Ni, Lt)
        self.options: dict[str, Any] = {
            "context_length": context_length,
            "lexicon": lexicon,
            "signature_seed": signature_seed,
            "normalize": normalize,
            "head": head,
            "pool": list(pool),
            "channels": channels,
            "hidden": hidden,
            "dropout": dropout,
            "logit_dropout": logit_dropout,
            "negative_kinds": list(negative_kinds) if negative_kinds else None,
            "in_batch_negatives": bool(in_batch_negatives),
        }
        # Fixed, never trained; a buffer so checkpoints carry the exact vectors (detail 3).
        self.register_buffer(
            "signatures", functional_signatures(len(lexicon), self.map_size[0], signature_seed)
        )
        self.head = build_head(
            head, self.map_size, tuple(pool), channels, hidden, dropout, logit_dropout
        )
        self._columns: dict[str, torch.Tensor] = {}  # caption -> (Lt,) functional ids

    @property
    def config(self) -> dict[str, Any]:
        return {"backbone": dict(self.backbone.config), **self.options}

    @property
    def context_length(self) -> int:
        return self.options["context_length"]

    def train(self, mode: bool = True) -> DCSM:
        super().train(mode)
        self.backbone.eval()  # frozen: never in training mode
        return self

    # -- maps and scores ------------------------------------------------------------------
    def functional(self, texts: Sequence[str]) -> torch.Tensor:
        """(T, Lt) long: lexicon index + 1 on every sub-token of a functional word, else 0."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._columns]
        if missing:
            found = functional_columns(
                self.backbone.tokenizer, missing, self.options["lexicon"], self.context_length
            )
            self._columns.update(zip(missing, found, strict=True))
        if not texts:
            return torch.zeros(0, self.context_length, dtype=torch.long)
        return torch.stack([self._columns[t] for t in texts])

    def maps(
        self, image_tokens: torch.Tensor, text_tokens: torch.Tensor, columns: torch.Tensor
    ) -> torch.Tensor:
        """(I, T, Ni, Lt) normalised maps with functional columns replaced."""
        return self._prepare(similarity_maps(image_tokens.float(), text_tokens.float()), columns)

    def _prepare(self, cosines: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        """(I, T, Ni, Lt) cosines + (T, Lt) functional ids -> what the head reads."""
        maps = replace_functional(cosines, columns.to(cosines.device), self.signatures)
        return normalize_maps(maps, self.options["normalize"])

    def score_features(
        self, image_tokens: torch.Tensor, text_tokens: torch.Tensor, columns: torch.Tensor
    ) -> torch.Tensor:
        """(I, Ni, D) x (T, Lt, D) dense tokens -> (I, T) scores."""
        maps = self.maps(image_tokens, text_tokens, columns)
        I, T = maps.shape[:2]
        return self.head(maps.flatten(0, 1)).view(I, T).float()

    def score_pairs(
        self,
        image_tokens: torch.Tensor,
        text_tokens: torch.Tensor,
        columns: torch.Tensor,
        pairs: torch.Tensor,
    ) -> torch.Tensor:
        """(P,) scores of the (image index, text index) rows of ``pairs`` (P, 2) only."""
        images, texts = image_tokens[pairs[:, 0]].float(), text_tokens[pairs[:, 1]].float()
        cosines = torch.einsum("pnd,pld->pnl", images, texts)[None]  # (1, P, Ni, Lt)
        return self.head(self._prepare(cosines, columns[pairs[:, 1]])[0]).float()

    # -- training on cached features --------------------------------------------------------
    def _decode(self, blob: bytes, kind: str, row: dict[str, Any]) -> torch.Tensor:
        shape = self.map_size[0] if kind == "image" else self.context_length
        where = f"feature row id={row.get('id')!r} ({kind} tokens)"
        return torch.from_numpy(decode_array(blob, (shape, self.backbone.embed_dim), where).copy())

    def collate(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Feature-cache rows -> one contrastive batch: each row's positive plus one hard negative.

        images: B originals then K counterfactual images; texts: B positive captions then the
        chosen negative captions. ``image_target``/``text_target`` give each row's matching
        column and each column's matching row (-1: a negative caption without an image).
        """
        kinds = self.options["negative_kinds"]
        images, texts, captions, cf_images = [], [], [], []
        neg_texts, neg_captions, neg_image, neg_scene = [], [], [], []
        for i, row in enumerate(rows):
            images.append(self._decode(row["image_tokens"], "image", row))
            negatives = [n for n in row.get("negatives") or [] if not kinds or n["kind"] in kinds]
            negative = negatives[int(torch.randint(len(negatives), ()))] if negatives else None
            if negative is not None and negative.get("positive_caption_tokens"):
                # Negation pairs "and no X" (true) with "and no Y" (false): contrast those two.
                texts.append(self._decode(negative["positive_caption_tokens"], "text", row))
                captions.append(negative["positive_caption"])
            else:
                texts.append(self._decode(row["caption_tokens"], "text", row))
                captions.append(row["caption"])
            if negative is not None:
                neg_texts.append(self._decode(negative["caption_tokens"], "text", row))
                neg_captions.append(negative["caption"])
                neg_scene.append(i)
                has_image = negative.get("image_tokens") is not None
                neg_image.append(has_image)
                if has_image:
                    cf_images.append(self._decode(negative["image_tokens"], "image", row))
        B, K = len(rows), len(cf_images)
        image_target = list(range(B))
        text_target = list(range(B))
        image_scene, text_scene = list(range(B)), list(range(B))
        for j, has_image in enumerate(neg_image):
            text_scene.append(neg_scene[j])
            if has_image:
                text_target.append(len(image_target))
                image_target.append(B + j)
                image_scene.append(neg_scene[j])
            else:
                text_target.append(-1)
        all_captions = captions + neg_captions
        groups = {c: g for g, c in enumerate(dict.fromkeys(all_captions))}
        assert len(image_target) == B + K
        return {
            "image_tokens": torch.stack(images + cf_images),  # (B + K, Ni, D) fp16
            "text_tokens": torch.stack(texts + neg_texts),  # (B + N, Lt, D) fp16
            "functional": self.functional(all_captions),  # (B + N, Lt)
            "image_target": torch.tensor(image_target),  # (B + K,) column of each image
            "text_target": torch.tensor(text_target),  # (B + N,) row of each text or -1
            "text_group": torch.tensor([groups[c] for c in all_captions]),  # equal captions
            "image_scene": torch.tensor(image_scene),  # (B + K,) the row each image came from
            "text_scene": torch.tensor(text_scene),  # (B + N,) the row each text came from
        }

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """CE(S, targets) + CE(S^T, targets) over raw scores; duplicate captions masked out.

        Without in-batch negatives only each scene's own block of S is scored; the rest is -inf.
        """
        image_tokens, text_tokens = batch["image_tokens"], batch["text_tokens"]
        if self.options["in_batch_negatives"]:
            scores = self.score_features(image_tokens, text_tokens, batch["functional"])
        else:
            own = batch["image_scene"][:, None] == batch["text_scene"][None, :]  # (I, T)
            pairs = own.nonzero()
            scores = torch.full(own.shape, float("-inf"), device=image_tokens.device)
            scores[pairs[:, 0], pairs[:, 1]] = self.score_pairs(
                image_tokens, text_tokens, batch["functional"], pairs
            )
        image_target, text_target = batch["image_target"], batch["text_target"]
        group = batch["text_group"]
        I, T = scores.shape
        # (I, T): the row's own caption and the column's caption are the same string
        same_text = group[image_target][:, None] == group[None, :]
        rows, cols = torch.arange(I, device=scores.device), torch.arange(T, device=scores.device)
        i2t_mask = same_text & (cols[None, :] != image_target[:, None])
        i2t_logits = scores.masked_fill(i2t_mask, float("-inf"))
        i2t = F.cross_entropy(i2t_logits, image_target)
        has_row = text_target >= 0
        t2i_mask = same_text.T[has_row] & (rows[None, :] != text_target[has_row][:, None])
        t2i = F.cross_entropy(
            scores.T[has_row].masked_fill(t2i_mask, float("-inf")), text_target[has_row]
        )
        loss = i2t + t2i
        accuracy = (i2t_logits.detach().argmax(1) == image_target).float().mean()
        return loss, {
            "loss": loss.item(),
            "i2t": i2t.item(),
            "t2i": t2i.item(),
            "i2t_accuracy": accuracy.item(),
            "images": float(I),
            "texts": float(T),
        }

    def param_groups(self, backbone_lr: float, head_lr: float, weight_decay: float) -> list[dict]:
        """Only the head trains (the backbone is frozen, the signatures are buffers)."""
        return split_param_groups(self, backbone_lr, head_lr, weight_decay)

    # -- Scorer ---------------------------------------------------------------------------
    @torch.no_grad()
    def dense_features(
        self, images: Sequence[Any], texts: Sequence[str], batch_size: int = 64
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fresh dense tokens: images (PIL or bytes) -> (I, Ni, D), texts -> (T, Lt, D)."""
        device = self.signatures.device
        image_chunks, text_chunks = [], []
        for start in range(0, len(images), batch_size):
            pixels = torch.stack(
                [
                    self.backbone.preprocess(decode_image(im))
                    for im in images[start : start + batch_size]
                ]
            )
            image_chunks.append(dense_image_tokens(self.backbone, pixels.to(device)))
        for start in range(0, len(texts), batch_size):
            ids = self.backbone.tokenize(
                list(texts[start : start + batch_size]), self.context_length
            )
            text_chunks.append(dense_text_tokens(self.backbone, ids.to(device))[0])
        D = self.backbone.embed_dim
        empty_image = torch.zeros(0, self.map_size[0], D, device=device)
        empty_text = torch.zeros(0, self.context_length, D, device=device)
        return (
            torch.cat(image_chunks) if image_chunks else empty_image,
            torch.cat(text_chunks) if text_chunks else empty_text,
        )

    @torch.no_grad()
    def score(
        self, images: Sequence[Image.Image], texts: Sequence[str | SceneGraph], batch_size: int = 64
    ) -> torch.Tensor:
        """(n_images, n_texts) DCSM scores, float32 on CPU.

        With per-map normalisation each score depends only on its own pair, so images are
        scored in chunks; batch normalisation needs every pair in one tensor.
        """
        was_training = self.training
        self.eval()
        try:
            captions = [t if isinstance(t, str) else graph_caption(t) for t in texts]
            image_tokens, text_tokens = self.dense_features(images, captions, batch_size)
            columns = self.functional(captions)
            if self.options["normalize"] == "batch" or not len(images):
                return self.score_features(image_tokens, text_tokens, columns).cpu()
            chunk = max(1, 4096 // max(1, len(captions)))  # bounds I x T maps per head call
            return torch.cat(
                [
                    self.score_features(image_tokens[i : i + chunk], text_tokens, columns).cpu()
                    for i in range(0, len(images), chunk)
                ]
            )
        finally:
            self.train(was_training)

    def load_head_state(self, state: dict[str, torch.Tensor]) -> None:
        """Load a trained state's head and signatures, keeping this model's own backbone.

        Training builds the model from config on cached features only, so its checkpoint's
        backbone weights are not the ones the features came from; the pipeline grafts the
        trained head onto the real backbone with this.
        """
        own = {k: v for k, v in state.items() if not k.startswith("backbone.")}
        missing, unexpected = self.load_state_dict(own, strict=False)
        missing = [k for k in missing if not k.startswith("backbone.")]
        if missing or unexpected:
            raise RuntimeError(f"head state: missing {missing[:5]}, unexpected {unexpected[:5]}")
