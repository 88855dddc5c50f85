"""Write a small own-data sample in the formats real users have, from rendered scenes.

    python datasets/make_sample.py out=/tmp/sample [num_samples=300 eval_samples=100]

Writes, from the project's own CLEVR two-object renders (no downloads):
    out/webdataset/00000.tar     img2dataset ``webdataset`` output: KEY.jpg, KEY.txt, KEY.json
    out/webdataset/00000.parquet img2dataset's per-shard metadata (every row, status)
    out/webdataset/00000_stats.json
    out/coco/captions.json       COCO captions format (images + annotations) ...
    out/coco/images/             ... and its image folder (the same training scenes)
    out/sugarcrepe/<split>.json  SugarCrepe format ({idx: filename, caption, negative_caption})
    out/sugarcrepe/val2017/      over separate, held-out scenes (never in the training sources)
so the "Your own data" walkthrough (docs/own-data.md) runs end to end on any machine.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from components.data.synthetic import SceneRowBuilder, SyntheticSpec
from components.platform.cli import cli
from components.platform.config import check, load_config

SUGARCREPE_KINDS = ("swap_att", "swap_obj", "replace_att", "replace_rel")  # ours x SugarCrepe's


@dataclass
class MakeSampleConfig:
    out: str = "datasets/sample"  # folder to write (created)
    num_samples: int = 300  # training scenes (WebDataset and COCO hold the same ones)
    eval_samples: int = 100  # held-out scenes for the SugarCrepe-format files
    world: str = "clevr_pairs"
    image_size: int = 64
    seed: int = 0

    def validate(self) -> None:
        for key in ("num_samples", "eval_samples"):
            check(getattr(self, key) > 0, key, getattr(self, key), "a positive integer")
        check(self.image_size >= 16, "image_size", self.image_size, ">= 16 pixels")


def jpeg(png: bytes) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_webdataset(root: Path, rows: list[dict], size: int) -> None:
    """One img2dataset shard: keys ``shard * 10^4 + i`` as 9 digits (its defaults)."""
    root.mkdir(parents=True, exist_ok=True)
    meta_rows = []
    with tarfile.open(root / "00000.tar", "w") as tar:
        for i, row in enumerate(rows):
            key, image = f"{i:09d}", jpeg(row["image"])
            meta = {
                "caption": row["caption"], "url": f"https://example.invalid/{key}.jpg",
                "key": key, "status": "success", "error_message": None,
                "width": size, "height": size, "original_width": size, "original_height": size,
                "exif": "{}", "sha256": hashlib.sha256(image).hexdigest(),
            }  # fmt: skip
            _add(tar, f"{key}.jpg", image)
            _add(tar, f"{key}.txt", row["caption"].encode())
            _add(tar, f"{key}.json", json.dumps(meta, indent=4).encode())
            meta_rows.append(meta)
    pq.write_table(pa.Table.from_pylist(meta_rows), root / "00000.parquet")
    now = time.time()
    stats = {
        "count": len(rows), "successes": len(rows), "failed_to_download": 0,
        "failed_to_resize": 0, "duration": 0.0, "start_time": now, "end_time": now,
        "status_dict": {"success": len(rows)},
    }  # fmt: skip
    (root / "00000_stats.json").write_text(json.dumps(stats, indent=4))


def write_coco(root: Path, rows: list[dict]) -> None:
    (root / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i, row in enumerate(rows):
        name = f"{i + 1:012d}.jpg"
        (root / "images" / name).write_bytes(jpeg(row["image"]))
        images.append({"id": i + 1, "file_name": name, "width": 0, "height": 0})
        annotations.append({"id": 100000 + i, "image_id": i + 1, "caption": row["caption"]})
    (root / "captions.json").write_text(
        json.dumps(
            {
                "info": {"description": "bindkit sample"},
                "images": images,
                "annotations": annotations,
            }
        )
    )


def write_sugarcrepe(root: Path, rows: list[dict]) -> dict[str, int]:
    """One JSON per negative kind SugarCrepe shares with our scenes; returns item counts."""
    (root / "val2017").mkdir(parents=True, exist_ok=True)
    splits: dict[str, dict[str, dict[str, str]]] = {kind: {} for kind in SUGARCREPE_KINDS}
    for i, row in enumerate(rows):
        name = f"{900000 + i:012d}.jpg"
        (root / "val2017" / name).write_bytes(jpeg(row["image"]))
        for negative in row["negatives"]:
            kind = negative["kind"]
            if kind in splits and not negative["positive_caption"]:
                record = {
                    "filename": name,
                    "caption": row["caption"],
                    "negative_caption": negative["caption"],
                }
                splits[kind][str(i)] = record
    for kind, items in splits.items():
        (root / f"{kind}.json").write_text(json.dumps(items, indent=4))
    return {kind: len(items) for kind, items in splits.items()}


def main(argv: list[str]) -> dict[str, int]:
    config = load_config(MakeSampleConfig, argv)
    spec = SyntheticSpec(config.world, config.seed, 0.7, config.image_size)
    train = SceneRowBuilder(spec, "train").table(list(range(config.num_samples))).to_pylist()
    held_out = (
        SceneRowBuilder(spec, "test_heldout").table(list(range(config.eval_samples))).to_pylist()
    )
    out = Path(config.out)
    write_webdataset(out / "webdataset", train, config.image_size)
    write_coco(out / "coco", train)
    counts = write_sugarcrepe(out / "sugarcrepe", held_out)
    print(f"wrote {config.num_samples} training samples (webdataset/, coco/) and SugarCrepe-format "
          f"{counts} over {config.eval_samples} held-out scenes to {out}")  # fmt: skip
    return counts


if __name__ == "__main__":
    cli(main)
