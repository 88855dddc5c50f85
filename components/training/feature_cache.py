"""Dense token features from a frozen Backbone, computed once with Ray Data and cached.

DCSM (docs/methods/dcsm.md 1.1, detail 1) needs every image token (CLS + patches) and every text position,
each after the tower's final LayerNorm and projection, L2-normalised
(components/models/dense_tokens.py). With a frozen backbone these never change, so a Ray Data
job computes them once (one ``BackboneFeatures`` actor per worker loads the backbone once) and
writes them as fp16 arrays in Parquet; training then only runs the scorer. Probes reuse the
image side (``BackboneFeatures.image_tokens``).

Arrays travel as raw little-endian fp16 bytes (``encode_array``/``decode_array``) so a cache is
plain Parquet that pyarrow alone reads; the shapes live in the cache card (``card.json``).
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import torch

from components.data.shards import shard_files
from components.models.batching import decode_image
from components.models.dense_tokens import (
    dense_image_tokens,
    dense_text_tokens,
    encode_array,
    num_image_tokens,
)
from components.models.loading import load_backbone
from components.platform.storage import (
    child,
    exists,
    filesystem_and_path,
    ray_paths,
    read_bytes,
    write_bytes,
)

CARD_FILE = "card.json"
FEATURE_DTYPE = np.float16
FEATURE_NEGATIVE_TYPE = pa.struct(
    [
        ("kind", pa.string()),
        ("caption", pa.string()),
        ("caption_tokens", pa.binary()),  # (Lt, D) fp16
        ("image_tokens", pa.binary()),  # (Ni, D) fp16 of the counterfactual image, or null
        ("positive_caption", pa.string()),  # the caption this negative is contrasted with, or null
        ("positive_caption_tokens", pa.binary()),
    ]
)
FEATURE_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("caption", pa.string()),
        ("image_tokens", pa.binary()),  # (Ni, D) fp16
        ("caption_tokens", pa.binary()),  # (Lt, D) fp16
        ("negatives", pa.list_(FEATURE_NEGATIVE_TYPE)),
    ]
)


def backbone_fingerprint(spec: dict[str, Any]) -> str:
    """A short hash naming a backbone spec (and a checkpoint's weights file) for cache keys."""
    payload: dict[str, Any] = {"spec": spec}
    if "checkpoint" in spec:
        directory = child(spec["checkpoint"])  # a local folder or a URI
        for name in ("config.json", "model.safetensors"):
            filesystem, inner = filesystem_and_path(str(child(directory, name)))
            info = filesystem.get_file_info(inner)  # size and mtime, local or an object
            if info.type != pafs.FileType.NotFound:
                payload[name] = [info.size, info.mtime_ns]
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


class BackboneFeatures:
    """Ray Data actor (``map_batches`` + ``ActorPoolStrategy``): the Backbone loads once per actor.

    Generic use (probes): ``__call__`` reads ``image_column`` (PNG/JPEG bytes) and adds
    ``image_tokens`` (B, Ni, D) fp16; with ``text_column`` it also adds ``text_tokens``
    (B, Lt, D) fp16 and ``text_mask`` (B, Lt).
    """

    def __init__(
        self,
        backbone: dict[str, Any],
        context_length: int | None = None,
        layer: int = -1,
        chunk_size: int = 64,
        device: str | None = None,
        image_column: str = "image",
        text_column: str | None = None,
    ) -> None:
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.backbone = load_backbone(backbone).eval().to(self.device)
        self.context_length = min(
            context_length or self.backbone.context_length, self.backbone.context_length
        )
        self.layer, self.chunk_size = layer, chunk_size
        self.image_column, self.text_column = image_column, text_column

    def image_tokens(self, images: Sequence[Any]) -> np.ndarray:
        """(n, Ni, D) fp16 dense image tokens of PNG/JPEG bytes or PIL images."""
        chunks = []
        for start in range(0, len(images), self.chunk_size):
            pixels = torch.stack(
                [
                    self.backbone.preprocess(decode_image(im))
                    for im in images[start : start + self.chunk_size]
                ]
            )
            tokens = dense_image_tokens(self.backbone, pixels.to(self.device), self.layer)
            chunks.append(tokens.cpu().numpy().astype(FEATURE_DTYPE))
        return np.concatenate(chunks) if chunks else np.zeros((0, 0, 0), FEATURE_DTYPE)

    def text_tokens(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """((n, Lt, D) fp16 dense text tokens, (n, Lt) bool mask) at this actor's context length."""
        chunks, masks = [], []
        for start in range(0, len(texts), self.chunk_size):
            ids = self.backbone.tokenize(
                list(texts[start : start + self.chunk_size]), self.context_length
            )
            tokens, mask = dense_text_tokens(self.backbone, ids.to(self.device), self.layer)
            chunks.append(tokens.cpu().numpy().astype(FEATURE_DTYPE))
            masks.append(mask.cpu().numpy())
        if not chunks:
            return np.zeros((0, 0, 0), FEATURE_DTYPE), np.zeros((0, 0), bool)
        return np.concatenate(chunks), np.concatenate(masks)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = dict(batch)
        out["image_tokens"] = self.image_tokens(list(batch[self.image_column]))
        if self.text_column:
            out["text_tokens"], out["text_mask"] = self.text_tokens(
                [str(t) for t in batch[self.text_column]]
            )
        return out


class ShardFeatures(BackboneFeatures):
    """Shard rows (RECORD_SCHEMA) -> FEATURE_SCHEMA rows: tokens of the image, the caption,
    and each hard negative's caption, counterfactual image and positive caption."""

    def __call__(self, table: pa.Table) -> pa.Table:  # type: ignore[override]
        rows = table.select(["id", "image", "caption", "negatives"]).to_pylist()
        images: list[bytes] = []
        image_index: dict[tuple[int, int], int] = {}  # (row, negative or -1) -> position
        texts: dict[str, int] = {}
        for r, row in enumerate(rows):
            if not isinstance(row["caption"], str) or not row["caption"]:
                raise ValueError(f"row id={row['id']!r}: empty or missing caption")
            image_index[(r, -1)] = len(images)
            images.append(row["image"])
            texts.setdefault(row["caption"], len(texts))
            for k, negative in enumerate(row["negatives"] or []):
                texts.setdefault(negative["caption"], len(texts))
                if negative.get("positive_caption"):
                    texts.setdefault(negative["positive_caption"], len(texts))
                if negative.get("image"):
                    image_index[(r, k)] = len(images)
                    images.append(negative["image"])
        image_tokens = self.image_tokens(images)
        text_tokens, _ = self.text_tokens(list(texts))  # dict order = insertion order
        text_blob = [encode_array(t) for t in text_tokens]
        out = []
        for r, row in enumerate(rows):
            negatives = []
            for k, negative in enumerate(row["negatives"] or []):
                positive = negative.get("positive_caption")
                negatives.append(
                    {
                        "kind": negative["kind"],
                        "caption": negative["caption"],
                        "caption_tokens": text_blob[texts[negative["caption"]]],
                        "image_tokens": encode_array(image_tokens[image_index[(r, k)]])
                        if (r, k) in image_index
                        else None,
                        "positive_caption": positive or None,
                        "positive_caption_tokens": text_blob[texts[positive]] if positive else None,
                    }
                )
            out.append(
                {
                    "id": row["id"],
                    "caption": row["caption"],
                    "image_tokens": encode_array(image_tokens[image_index[(r, -1)]]),
                    "caption_tokens": text_blob[texts[row["caption"]]],
                    "negatives": negatives,
                }
            )
        return pa.Table.from_pylist(out, schema=FEATURE_SCHEMA)


def read_feature_card(directory: str | Path) -> dict[str, Any]:
    """The card of a finished feature cache, local or a URI (its absence means unfinished)."""
    path = str(child(directory, CARD_FILE))
    if not exists(path):
        raise FileNotFoundError(f"{path}: no feature cache card (cache not built or unfinished)")
    return json.loads(read_bytes(path))


def cache_features(
    source: str | Path,
    out: str | Path,
    backbone: dict[str, Any],
    context_length: int | None = None,
    num_actors: int = 1,
    batch_size: int = 64,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
) -> dict[str, Any]:
    """Compute a shard split's dense features once with Ray Data and write them to ``out``.

    Reuses ``out`` when its card matches (same backbone fingerprint, context length, source).
    ``source`` and ``out`` may be local folders or URIs (``s3://bucket/shards/train``).
    Returns the card: shapes, row count, throughput.
    """
    import ray.data

    source, out = child(source), child(out)
    probe = load_backbone(backbone)
    context_length = min(context_length or probe.context_length, probe.context_length)
    key = {
        "backbone": backbone,
        "fingerprint": backbone_fingerprint(backbone),
        "context_length": context_length,
        "source": str(source.resolve()) if isinstance(source, Path) else source,
    }
    if exists(str(child(out, CARD_FILE))):
        card = read_feature_card(out)
        if card.get("key") == key:
            return card
    paths, source_filesystem = ray_paths(shard_files(source))
    started = time.perf_counter()
    dataset = ray.data.read_parquet(paths, filesystem=source_filesystem)
    dataset = dataset.select_columns(["id", "image", "caption", "negatives"])
    features = dataset.map_batches(
        ShardFeatures,
        fn_constructor_kwargs={"backbone": backbone, "context_length": context_length},
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=num_actors),
        num_cpus=num_cpus,
        num_gpus=num_gpus or None,
    )
    # Rows in shard order, whatever order the actors finish in: the scorer reads the cache
    # in file order, so a loaded machine would otherwise train on another order (another
    # result from the same seed).
    features.context.execution_options.preserve_order = True
    filesystem, inner = filesystem_and_path(str(out))
    if exists(str(out)):
        filesystem.delete_dir(inner)
    features.write_parquet(f"{inner}/data", filesystem=filesystem)
    seconds = time.perf_counter() - started
    written = sorted(
        info.path
        for info in filesystem.get_file_info(pafs.FileSelector(f"{inner}/data"))
        if info.path.endswith(".parquet")
    )
    rows = sum(pq.read_metadata(f, filesystem=filesystem).num_rows for f in written)
    card = {
        "key": key,
        "backbone_config": probe.config,
        "image_tokens": [num_image_tokens(probe), probe.embed_dim],
        "text_tokens": [context_length, probe.embed_dim],
        "dtype": "float16",
        "rows": rows,
        "seconds": seconds,
        "rows_per_second": rows / max(seconds, 1e-9),
        "files": [posixpath.relpath(f, inner) for f in written],
    }
    card_text = json.dumps(card, indent=2, sort_keys=True, default=str)
    write_bytes(str(child(out, CARD_FILE)), card_text.encode())
    return card


def feature_files(directory: str | Path) -> list[str]:
    """The Parquet files of a finished cache (local paths or URIs), in card order."""
    card = read_feature_card(directory)
    return [str(child(directory, f)) for f in card["files"]]
