"""The data a training pipeline reads: a shard folder it is given, or a synthetic world built once.

train_occlip and train_dcsm (and any later trainer) share this block, so the same
``synthetic.*`` settings name the same cached build under ``synthetic.root`` whichever
pipeline asks first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from components.data.build import build_synthetic, check_synthetic_options, split_sizes
from components.data.shards import ShardError, shard_files
from components.data.synthetic import SyntheticSpec
from components.platform.outputs import LOCK, OutputLockedError
from components.platform.storage import (
    child,
    exists,
    filesystem_and_path,
    ray_paths,
    read_bytes,
)


@dataclass
class SyntheticData:
    """The synthetic world built when ``data`` is empty."""

    world: str = "clevr_pairs"  # world name (datasets/NAME.yaml)
    num_scenes: int = 6000  # scenes over all splits
    coverage: float = 0.7  # fraction of concept combinations seen in training, in (0, 1]
    seed: int = 0  # seed of the world build
    image_size: int = 64  # pixels, 16..1024
    root: str = "datasets"  # folder (or URI) the built world is cached under

    def validate(self) -> None:
        check_synthetic_options(self.world, self.coverage, self.image_size, self.num_scenes)

    def spec(self) -> SyntheticSpec:
        return SyntheticSpec(self.world, self.seed, self.coverage, self.image_size)

    def path(self) -> str | Path:
        """The cache folder of this build: its name encodes every setting."""
        name = f"{self.world}-n{self.num_scenes}-c{self.coverage}-s{self.seed}-{self.image_size}px"
        return child(self.root, name)


def training_shards(data: str, synthetic: SyntheticData) -> str | Path:
    """The shard directory to train on (a Path, or a URI string): ``data`` when given, else
    the synthetic world, built when missing or built from an older world spec."""
    if data:
        return child(data)
    path = synthetic.path()
    card = str(child(path, "card.json"))  # written last: its absence means an unfinished build
    if exists(card) and json.loads(read_bytes(card))["splits"] != split_sizes(
        synthetic.spec(), synthetic.num_scenes
    ):
        print(f"{path}: built from an older world spec (other splits); rebuilding", flush=True)
        filesystem, inner = filesystem_and_path(str(path))
        filesystem.delete_dir(inner)
    if not exists(card):
        _build_world(synthetic, path)
    return path


def _build_world(synthetic: SyntheticData, path: str | Path) -> None:
    """Build the cached world; a run building it already is named as such, since the
    cache is shared between runs whose own ``out=`` differ."""
    try:
        build_synthetic(synthetic.spec(), synthetic.num_scenes, path)
    except OutputLockedError:
        raise OutputLockedError(
            f"the world cache {path} is being built by {_builder(path)}; wait for it to "
            "finish or set synthetic.root to another folder"
        ) from None


def _builder(path: str | Path) -> str:
    """Who holds the build lock of ``path``, as its lock record says."""
    try:
        holder = json.loads(read_bytes(str(child(path, LOCK))))
    except (OSError, ValueError):  # released or half-written since the refusal
        return "another run"
    return f"pid {holder.get('pid')} on {holder.get('host')}"


def split_rows(data: str, synthetic: SyntheticData, split: str) -> int | None:
    """Rows of ``split`` known before Ray starts or a world is built: from the config for
    a synthetic world, from ``data``'s card.json or its Parquet footers otherwise. None
    when ``data`` has no such split (the read that needs it names it)."""
    if not data:
        return split_sizes(synthetic.spec(), synthetic.num_scenes).get(split)
    card = str(child(data, "card.json"))
    if exists(card):
        counts = json.loads(read_bytes(card)).get("splits") or {}
        if split in counts:
            return int(counts[split])
    try:
        paths, filesystem = ray_paths(shard_files(child(data, split)))
    except ShardError:
        return None
    return sum(pq.read_metadata(p, filesystem=filesystem).num_rows for p in paths)
