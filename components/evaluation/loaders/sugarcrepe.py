"""SugarCrepe (Hsieh et al. 2023, RAIVNLab/sugar-crepe): 7 JSON splits over COCO val2017.

Each ``<split>.json`` is a dict ``{"<idx>": {"filename", "caption", "negative_caption"}}``
whose keys may skip numbers, so the key (not a position) is the item id. The metric is
accuracy of s(image, caption) > s(image, negative_caption): candidates are
``(caption, negative_caption)`` with index 0 correct. The layout matches clip_benchmark:
``<root>/<split>.json`` and ``<root>/val2017/``.
"""

from __future__ import annotations

from pathlib import Path

from components.evaluation.benchmark import (
    Benchmark,
    BenchmarkError,
    BenchmarkItem,
    check_images_exist,
)
from components.evaluation.loaders.common import get_text, image_ref, read_json, require_dir

SPLITS = ("add_att", "add_obj", "replace_att", "replace_obj", "replace_rel", "swap_att", "swap_obj")


def load_sugarcrepe(
    root: Path, split: str, image_dir: Path | None = None, check_images: bool = True
) -> Benchmark:
    """One SugarCrepe split from ``root/<split>.json`` with images in ``root/val2017``."""
    if split not in SPLITS:
        raise BenchmarkError(f"unknown SugarCrepe split {split!r}; expected one of {SPLITS}")
    path = root / f"{split}.json"
    data = read_json(path, "SugarCrepe split from RAIVNLab/sugar-crepe data/")
    if not isinstance(data, dict):
        raise BenchmarkError(f"{path} must be a JSON object keyed by item index")
    images = require_dir(image_dir or root / "val2017", "COCO val2017 images")
    items = []
    for key, record in data.items():
        where = f"item {key!r}"
        filename = get_text(record, "filename", path, where)
        items.append(
            BenchmarkItem(
                item_id=str(key),
                images=(image_ref(images, filename),),
                texts=(
                    get_text(record, "caption", path, where),
                    get_text(record, "negative_caption", path, where),
                ),
                correct_text=(0,),
                category=split,
            )
        )
    if check_images:
        check_images_exist(items, path)
    return Benchmark(f"sugarcrepe/{split}", tuple(items))
