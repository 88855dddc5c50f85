"""A tiny WebDataset source made on the fly, for smoke runs and benchmarks (no downloads).

Captions are COCO-like ("a red cat on a wooden bench"); images are flat colour squares.
It plants one truncated JPEG and one empty caption so the reject path always runs.
"""

from __future__ import annotations

import io
import random
import tarfile
from pathlib import Path

COLOURS = ["red", "blue", "green", "white", "black", "yellow", "brown"]
MATERIALS = ["wooden", "metal", "glass", "plastic"]
THINGS = ["cat", "dog", "bench", "table", "car", "vase", "umbrella", "chair", "bus", "cup"]
RELATIONS = ["on", "next to", "in front of", "behind", "to the left of", "on top of", "under"]


def demo_caption(rng: random.Random) -> str:
    """One caption: count/colour/material attributes and a (multi-word) relation."""
    first = f"{rng.choice(['a', 'two'])} {rng.choice(COLOURS)} {rng.choice(THINGS)}"
    if first.startswith("two"):
        first += "s"
    second = f"a {rng.choice(MATERIALS)} {rng.choice(THINGS)}"
    caption = f"{first} {rng.choice(RELATIONS)} {second}"
    if rng.random() < 0.2:
        caption += f" and no {rng.choice(THINGS)}"
    return caption


def demo_image(colour: str, size: int = 32) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def write_demo_webdataset(
    root: str | Path, num_samples: int, seed: int = 0, per_tar: int = 50
) -> Path:
    """Write ``num_samples`` samples as sorted tar shards under ``root``; returns ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for start in range(0, num_samples, per_tar):
        path = root / f"demo-{start // per_tar:05d}.tar"
        with tarfile.open(path.with_suffix(".tar.tmp"), "w") as tar:
            for index in range(start, min(num_samples, start + per_tar)):
                caption = demo_caption(rng)
                image = demo_image(rng.choice(COLOURS))
                if index == 1:
                    image = image[:200]  # truncated JPEG -> corrupt_image
                if index == 2:
                    caption = " "  # -> empty_caption
                for name, data in (
                    (f"{index:08d}.jpg", image),
                    (f"{index:08d}.txt", caption.encode()),
                ):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        path.with_suffix(".tar.tmp").replace(path)
    return root
