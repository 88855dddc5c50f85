"""Frozen-backbone features for probing, as a streaming Ray Data job.

Shards (image, mask, codes) -> model actors (GPU when the cluster has one) -> per layer the
CLS token, the mean of the spatial tokens and, optionally, every patch token (fp16), plus
the scene's object/feature codes and the patch labels (majority instance id per patch, from
the mask). The driver streams the actors' output into memory-mapped ``.npy`` files
preallocated to the row count in the Parquet metadata, so memory stays bounded however
many images there are, and probes read random minibatches straight from disk.

    out/<split>/layer{L}_cls.npy      (N, D) float32
    out/<split>/layer{L}_mean.npy     (N, D) float32
    out/<split>/layer{L}_patches.npy  (N, P, D) float16   (patch_tokens=True)
    out/<split>/patch_labels.npy      (N, P) int16   majority instance id (mask value), 0 background
    out/<split>/patch_objects.npy     (N, P) int16   that instance's object (conjunction) index, -1 none
    out/<split>/patch_labels_foreground.npy, patch_objects_foreground.npy: majority among
        object pixels only (see same_object.patch_labels_from_mask)
    out/<split>/object_code.npy, feature_code.npy, meta.json

Tokens are read from the vision tower's residual stream at the requested blocks
(``token_space="residual"``, what probes usually read), or after ln_post and the projection
(``"projected"``, the space of the pooled embedding).
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from components.models.loading import load_backbone
from components.probes.same_object import patch_labels_from_mask

INPUT_COLUMNS = ["id", "image", "mask", "objects", "object_code", "feature_code", "split"]
# Row i of every array is row i of the split's shards read in file order, whatever order
# Ray Data yields batches in; meta.json records it so features written otherwise are redone.
ROW_ORDER = "shards"
TOKEN_SPACES = ("residual", "projected")


RANDOM_INIT_SEED = 0  # the weights of a random-init backbone under probe


@dataclass
class ExtractConfig:
    """What to extract and how wide to run it."""

    # backbone blocks to extract (-1 = last)
    layers: list[int] = field(default_factory=lambda: [-1])
    token_space: str = "residual"  # residual | projected
    patch_tokens: bool = (
        True  # also keep every patch token (fp16); the attention and pair probes need it
    )
    batch_size: int = 64  # images per backbone call
    num_actors: int = 1  # extraction actors (each loads the backbone once)


def resolve_layers(num_blocks: int, layers: list[int]) -> list[int]:
    """Negative layers count from the end (-1 = last block); returns sorted unique 0-based."""
    resolved = []
    for layer in layers:
        index = layer + num_blocks if layer < 0 else layer
        if not 0 <= index < num_blocks:
            raise ValueError(f"layer {layer} out of range for a tower with {num_blocks} blocks")
        resolved.append(index)
    return sorted(set(resolved))


@torch.no_grad()
def layer_tokens(
    backbone, images: torch.Tensor, layers: list[int], token_space: str
) -> dict[int, torch.Tensor]:
    """{layer: (B, 1 + P, D)} CLS first, from one pass of the vision tower."""
    if token_space not in TOKEN_SPACES:
        raise ValueError(f"token_space must be one of {TOKEN_SPACES}, got {token_space!r}")
    visual = backbone.model.visual
    out = visual.forward_intermediates(
        images,
        indices=layers,
        stop_early=True,
        normalize_intermediates=token_space == "projected",
        intermediates_only=True,
        output_fmt="NLC",
        output_extra_tokens=True,
    )
    tokens = {}
    for layer, prefix, patches in zip(
        layers, out["image_intermediates_prefix"], out["image_intermediates"], strict=True
    ):
        layer_out = torch.cat([prefix, patches], 1)
        if token_space == "projected" and visual.proj is not None:
            layer_out = layer_out @ visual.proj
        tokens[layer] = layer_out
    return tokens


class TokenExtractor:
    """Ray Data actor: decode, run the backbone once per batch, emit per-layer features."""

    def __init__(self, model: dict[str, Any], config: ExtractConfig):
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        # A random-init backbone (no checkpoint, no weights) must be the same in every actor
        # and every run, or "random init" bits change from run to run; loaded weights
        # overwrite whatever the seed drew, and the caller's RNG is left as it was.
        with torch.random.fork_rng():
            torch.manual_seed(RANDOM_INIT_SEED)
            self.backbone = load_backbone(model).eval().to(self.device)
        visual = self.backbone.model.visual
        self.layers = resolve_layers(len(visual.transformer.resblocks), config.layers)
        self.config = config
        self.image_size = self.backbone.image_size
        self.grid = self.image_size // visual.conv1.kernel_size[0]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        images = torch.stack(
            [
                self.backbone.preprocess(Image.open(io.BytesIO(b)).convert("RGB"))
                for b in batch["image"]
            ]
        ).to(self.device)
        tokens = layer_tokens(self.backbone, images, self.layers, self.config.token_space)
        out: dict[str, np.ndarray] = {"split": np.asarray(batch["split"]), "id": batch["id"]}
        for layer, t in tokens.items():
            t = t.float()
            out[f"layer{layer}_cls"] = t[:, 0].cpu().numpy()
            out[f"layer{layer}_mean"] = t[:, 1:].mean(1).cpu().numpy()
            if self.config.patch_tokens:
                out[f"layer{layer}_patches"] = t[:, 1:].half().cpu().numpy()
        masks = [self._mask(m) for m in batch["mask"]]
        # instance id (mask value) -> object (conjunction) index; -1 for background
        instance_objects = [
            np.array([-1] + [o["object_index"] for o in objects], dtype=np.int16)
            for objects in batch["objects"]
        ]
        for suffix, foreground in (("", False), ("_foreground", True)):
            labels = np.stack(
                [patch_labels_from_mask(m, self.grid, foreground) for m in masks]
            )  # (B, P)
            out[f"patch_labels{suffix}"] = labels.astype(np.int16)
            out[f"patch_objects{suffix}"] = np.stack(
                [lookup[row] for lookup, row in zip(instance_objects, labels, strict=True)]
            )
        out["object_code"] = np.stack([np.asarray(c, dtype=np.uint8) for c in batch["object_code"]])
        out["feature_code"] = np.stack(
            [np.asarray(c, dtype=np.uint8) for c in batch["feature_code"]]
        )
        return out

    def _mask(self, mask_png: bytes) -> np.ndarray:
        """The instance mask resized (nearest) to the model's input size."""
        mask = Image.open(io.BytesIO(mask_png))
        if mask.size != (self.image_size, self.image_size):
            mask = mask.resize((self.image_size, self.image_size), Image.NEAREST)
        return np.asarray(mask)


def extract_features(
    files_by_split: dict[str, list[str | Path]],
    out: str | Path,
    model: dict[str, Any],
    config: ExtractConfig,
) -> dict[str, dict[str, Any]]:
    """Stream every split's shards through one model actor pool into ``out/<split>/*.npy``.

    One Ray Data job for all splits, so the actors start once. Rows are routed by their
    ``split`` column and written at their ``id``'s position in the split's shards (file
    order), not in the order Ray Data yields them: the same shards give the same files, so a
    probe's shuffled minibatches, and its numbers, repeat run to run. The caller owns
    ``ray.init``. Returns each split's meta.
    """
    import pyarrow.parquet as pq
    import ray
    import ray.data

    files = {split: [str(f) for f in paths] for split, paths in files_by_split.items()}
    for split, paths in files.items():
        if not paths:
            raise ValueError(f"extract_features: no shard files for split {split!r}")
        for path in paths:
            missing = set(INPUT_COLUMNS) - set(pq.read_schema(path).names)
            if missing:
                raise ValueError(f"{path}: missing columns {sorted(missing)} needed for probing")
    num_rows = {
        split: sum(pq.read_metadata(f).num_rows for f in paths) for split, paths in files.items()
    }
    out = Path(out)
    reused = reusable_features(out, files, num_rows, model, config)
    if reused is not None:
        return reused
    # Read only when extracting: a reuse needs the row counts alone.
    positions = {split: row_positions(paths) for split, paths in files.items()}
    gpus = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
    started = time.perf_counter()
    dataset = (
        ray.data.read_parquet([f for paths in files.values() for f in paths])
        .select_columns(INPUT_COLUMNS)
        .map_batches(
            TokenExtractor,
            fn_constructor_kwargs={"model": model, "config": config},
            batch_size=config.batch_size,
            compute=ray.data.ActorPoolStrategy(size=config.num_actors),
            num_gpus=gpus,
            num_cpus=0 if gpus else 1,
        )
    )
    arrays: dict[str, dict[str, np.ndarray]] = {split: {} for split in files}
    written = {split: np.zeros(n, dtype=bool) for split, n in num_rows.items()}
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        row_splits, row_ids = batch.pop("split"), batch.pop("id")
        for split in np.unique(row_splits):
            if split not in arrays:
                raise ValueError(
                    f"extract_features: a row has split {split!r}; expected one of {sorted(files)}"
                )
            rows = np.flatnonzero(row_splits == split)
            index = np.array([positions[split][i] for i in row_ids[rows]], dtype=np.int64)
            if written[split][index].any():
                raise RuntimeError(f"extract_features: a row of {split!r} arrived twice")
            written[split][index] = True
            for name, values in batch.items():
                if name not in arrays[split]:
                    (out / split).mkdir(parents=True, exist_ok=True)
                    arrays[split][name] = np.lib.format.open_memmap(
                        out / split / f"{name}.npy",
                        mode="w+",
                        dtype=values.dtype,
                        shape=(num_rows[split], *values.shape[1:]),
                    )
                arrays[split][name][index] = values[rows]
    metas = {}
    for split, split_arrays in arrays.items():
        if not written[split].all():
            raise RuntimeError(
                f"extract_features: wrote {int(written[split].sum())} rows of {split!r}, "
                f"its shards hold {num_rows[split]}"
            )
        for array in split_arrays.values():
            array.flush()
        layers = sorted(
            int(n[len("layer") :].split("_")[0]) for n in split_arrays if n.endswith("_cls")
        )
        metas[split] = {
            "rows": num_rows[split],
            "layers": layers,
            "arrays": {n: list(a.shape) for n, a in split_arrays.items()},
            "model": model,
            "config": asdict(config),
            "seconds": time.perf_counter() - started,
            "shards": files[split],
            "row_order": ROW_ORDER,
            "random_init_seed": RANDOM_INIT_SEED,
        }
        (out / split / "meta.json").write_text(json.dumps(metas[split], indent=2))
    return metas


def row_positions(paths: list[str]) -> dict[str, int]:
    """id -> row index over ``paths`` read in order; a repeated id is an error, since two
    rows would then claim one position."""
    import pyarrow.parquet as pq

    ids = [
        i for path in paths for i in pq.read_table(path, columns=["id"]).column("id").to_pylist()
    ]
    positions = {sample_id: index for index, sample_id in enumerate(ids)}
    if len(positions) != len(ids):
        raise ValueError(f"extract_features: repeated ids in {paths[0]} ... ({len(paths)} files)")
    return positions


def reusable_features(
    out: Path,
    files: dict[str, list[str]],
    num_rows: dict[str, int],
    model: dict[str, Any],
    config: ExtractConfig,
) -> dict[str, dict[str, Any]] | None:
    """Every split's meta when ``out`` already holds features of these shards, model and
    extraction config (each family, sweep and rerun then reads the same memmaps); else None.

    A checkpoint retrained in place keeps its path: delete ``out`` to re-extract it.
    """
    metas = {}
    for split, paths in files.items():
        meta_path = out / split / "meta.json"
        if not meta_path.exists():
            return None
        meta = json.loads(meta_path.read_text())
        same = (
            meta.get("shards") == paths
            and meta.get("rows") == num_rows[split]
            and meta.get("model") == model
            and meta.get("config") == asdict(config)
            and meta.get("row_order") == ROW_ORDER
            and meta.get("random_init_seed") == RANDOM_INIT_SEED
        )
        if not same:
            return None
        metas[split] = meta
    return metas


def load_features(directory: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays of one extracted split as read-only memmaps, and its meta.json."""
    directory = Path(directory)
    meta_path = directory / "meta.json"
    if not meta_path.exists():
        raise FileNotFoundError(f"{directory}: no meta.json (extraction unfinished?)")
    meta = json.loads(meta_path.read_text())
    return {
        name: np.load(directory / f"{name}.npy", mmap_mode="r") for name in meta["arrays"]
    }, meta


class TokensWithCLS:
    """A lazy (N, 1 + P, D) view joining CLS (N, D) and patch tokens (N, P, D) row by row.

    The attention probe reads CLS first then patches; materialising the join would copy
    every patch token into memory, so rows are joined only when a minibatch asks for them.
    """

    def __init__(self, cls: np.ndarray, patches: np.ndarray):
        if len(cls) != len(patches) or cls.shape[-1] != patches.shape[-1]:
            raise ValueError(
                f"TokensWithCLS: cls {cls.shape} does not match patches {patches.shape}"
            )
        self.cls, self.patches = cls, patches
        self.shape = (len(cls), 1 + patches.shape[1], patches.shape[2])
        self.ndim = 3

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> np.ndarray:
        cls = np.asarray(self.cls[index], dtype=np.float32)[..., None, :]
        return np.concatenate([cls, np.asarray(self.patches[index], dtype=np.float32)], axis=-2)
