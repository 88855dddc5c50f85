"""What a probe reads: the scenes to probe, the world they come from, and per-layer inputs.

probe_binding and the probe sweep share these, so a sweep trial and a pipeline run on the
same settings read the same built world and the same feature arrays.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from components.data.build import check_synthetic_options, probe_world
from components.data.shards import shard_files
from components.data.worlds import WORLD_CLASSES
from components.platform.config import check_path
from components.probes.extract import ExtractConfig, TokensWithCLS, extract_features, load_features

SPLITS = ("train", "val", "test")  # the probe splits: fit, epoch choice, the reported number


@dataclass
class ProbeScenes:
    """The scenes to probe: an existing shard directory, or a synthetic world to build."""

    data: str = ""  # a shard directory with train/, val/, test/ and card.json; empty = build
    world: str = "colorshape"  # world built when data is empty
    num_scenes: int = 24000  # scenes of the built world
    seed: int = 0  # seed of the built world
    image_size: int = 64  # pixels of the built world
    splits: dict[str, float] = field(default_factory=dict)  # scene shares; {} = the world's
    # probe split -> the world's split name (clevr: test -> test_seen)
    split_names: dict[str, str] = field(
        default_factory=lambda: {"train": "train", "val": "val", "test": "test"}
    )
    root: str = "datasets"  # folder the built world is cached under

    def validate(self) -> None:
        if self.data:
            check_path("data", self.data, "dir")
        else:  # coverage does not apply: probes see every object
            check_synthetic_options(self.world, 1.0, self.image_size, self.num_scenes)
        if sorted(self.split_names) != sorted(SPLITS):
            raise ValueError(
                f"data.split_names must map exactly {list(SPLITS)} to the world's split "
                f"names, got {dict(self.split_names)}"
            )


def scene_shards(scenes: ProbeScenes) -> Path:
    """The shard directory to probe, building the synthetic world when needed."""
    if scenes.data:
        return Path(scenes.data)
    return probe_world(
        scenes.root, scenes.world, scenes.num_scenes, scenes.seed, scenes.image_size, scenes.splits
    )


def load_world(data: Path):
    """The world a shard directory was built from (its card carries the full spec)."""
    card = json.loads((data / "card.json").read_text())
    spec = card["spec"]
    return WORLD_CLASSES[spec["kind"]](spec)


def exact_entropies(world, split_names: dict[str, str]) -> dict[str, float] | None:
    """The test split's exact entropies, or None for worlds without them (no bits then)."""
    return world.entropies(split_names["test"]) if hasattr(world, "entropies") else None


def binding_inputs(features: dict[str, np.ndarray], layer: int, representation: str):
    """The probe input of one layer: (N, d) for cls/mean, lazy (N, 1 + P, D) for tokens."""
    if representation == "tokens":
        return TokensWithCLS(features[f"layer{layer}_cls"], features[f"layer{layer}_patches"])
    return features[f"layer{layer}_{representation}"]


def patch_classes(features: dict[str, np.ndarray], world, suffix: str) -> dict[str, np.ndarray]:
    """Per patch, the value index of each concept of its object (-1 background)."""
    objects = np.asarray(features[f"patch_objects{suffix}"], dtype=np.int64)
    values = np.stack(np.unravel_index(np.maximum(objects, 0), world.space.sizes), -1)
    return {
        name: np.where(objects >= 0, values[..., c], -1) for c, name in enumerate(world.space.names)
    }


def sweep_features(
    features: str, scenes: ProbeScenes, out: str, model: dict[str, Any], extract: ExtractConfig
) -> tuple[Path, Any]:
    """The features dir every probe sweep trial reads (extracting once into ``out/features``
    unless ``features`` names one) and the world its scenes come from."""
    if features:
        directory = Path(features).resolve()
        _, meta = load_features(directory / "test")
        data = Path(scenes.data) if scenes.data else Path(meta["shards"][0]).parents[1]
        if not (data / "card.json").exists():
            raise FileNotFoundError(
                f"features {directory}: no card.json in {data} (from the meta's shard paths); "
                "set data.data to the shard dir the features were extracted from"
            )
        return directory, load_world(data)
    data = scene_shards(scenes)
    directory = (Path(out) / "features").resolve()
    if not all(_extracted_as(directory / split, model, extract) for split in SPLITS):
        files = {split: shard_files(data / split) for split in SPLITS}
        extract_features(files, directory, model, extract)
    return directory, load_world(data)


def _extracted_as(split_dir: Path, model: dict[str, Any], extract: ExtractConfig) -> bool:
    """Whether a finished extraction of this model and ExtractConfig is already there."""
    try:
        _, meta = load_features(split_dir)
    except FileNotFoundError:
        return False
    return meta["model"] == model and meta["config"] == asdict(extract)
