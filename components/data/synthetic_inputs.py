"""The data a training pipeline reads: a shard folder it is given, or a synthetic world built once.

train_occlip and train_dcsm (and any later trainer) share this block, so the same
``synthetic.*`` settings name the same cached build under ``synthetic.root`` whichever
pipeline asks first.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from components.data.build import build_synthetic, check_synthetic_options, split_sizes
from components.data.synthetic import SyntheticSpec
from components.platform.storage import child


@dataclass
class SyntheticData:
    """The synthetic world built when ``data`` is empty."""

    world: str = "clevr_pairs"  # world name (datasets/NAME.yaml)
    num_scenes: int = 6000  # scenes over all splits
    coverage: float = 0.7  # fraction of concept combinations seen in training, in (0, 1]
    seed: int = 0  # seed of the world build
    image_size: int = 64  # pixels, 16..1024
    root: str = "datasets"  # folder the built world is cached under

    def validate(self) -> None:
        check_synthetic_options(self.world, self.coverage, self.image_size, self.num_scenes)

    def path(self) -> Path:
        """The cache folder of this build: its name encodes every setting."""
        name = f"{self.world}-n{self.num_scenes}-c{self.coverage}-s{self.seed}-{self.image_size}px"
        return Path(self.root) / name


def training_shards(data: str, synthetic: SyntheticData) -> str | Path:
    """The shard directory to train on (a Path, or a URI string): ``data`` when given, else
    the synthetic world, built when missing or built from an older world spec."""
    if data:
        return child(data)
    path = synthetic.path()
    spec = SyntheticSpec(synthetic.world, synthetic.seed, synthetic.coverage, synthetic.image_size)
    card = path / "card.json"  # written last: its absence means an unfinished build
    if card.exists() and json.loads(card.read_text())["splits"] != split_sizes(
        spec, synthetic.num_scenes
    ):
        print(f"{path}: built from an older world spec (other splits); rebuilding", flush=True)
        shutil.rmtree(path)
    if not card.exists():
        build_synthetic(spec, synthetic.num_scenes, path)
    return path
