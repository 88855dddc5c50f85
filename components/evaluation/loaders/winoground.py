"""Winoground (Thrush et al. 2022; HF ``facebook/winoground``, gated, research licence).

``examples.jsonl`` (``metadata.jsonl`` in some mirrors) has one object per line with
``id, caption_0, caption_1, image_0, image_1`` (image stems such as ``ex_0_img_0``) and
``tag, secondary_tag, num_main_preds, collapsed_tag``; the images are ``.png`` files from
``images.zip``, expected in ``<root>/images``. Each example is one 2x2 item whose
caption i describes image i; the headline is the group score.
"""

from __future__ import annotations

from pathlib import Path

from components.evaluation.benchmark import (
    Benchmark,
    BenchmarkFileMissing,
    BenchmarkItem,
    check_images_exist,
)
from components.evaluation.loaders.common import (
    get_field,
    get_text,
    image_ref,
    read_jsonl,
    require_dir,
)

ANNOTATION_FILES = ("examples.jsonl", "metadata.jsonl")


def _annotation_file(root: Path) -> Path:
    for name in ANNOTATION_FILES:
        if (root / name).is_file():
            return root / name
    raise BenchmarkFileMissing(
        f"neither of {list(ANNOTATION_FILES)} exists in {root} (Winoground from the gated "
        "HF dataset facebook/winoground)"
    )


def _image_file(stem: str) -> str:
    return stem if Path(stem).suffix else f"{stem}.png"


def load_winoground(
    root: Path, image_dir: Path | None = None, check_images: bool = True
) -> Benchmark:
    """All Winoground examples as 2-image x 2-caption items, tagged by ``collapsed_tag``."""
    path = _annotation_file(root)
    images = require_dir(image_dir or root / "images", "Winoground images.zip contents")
    items = []
    for index, record in enumerate(read_jsonl(path, "Winoground annotations")):
        where = f"line {index + 1}"
        example_id = get_field(record, "id", path, where)
        items.append(
            BenchmarkItem(
                item_id=str(example_id),
                images=tuple(
                    image_ref(images, _image_file(get_text(record, key, path, where)))
                    for key in ("image_0", "image_1")
                ),
                texts=(
                    get_text(record, "caption_0", path, where),
                    get_text(record, "caption_1", path, where),
                ),
                correct_text=(0, 1),
                category=str(record.get("collapsed_tag") or record.get("tag") or ""),
            )
        )
    if check_images:
        check_images_exist(items, path)
    return Benchmark("winoground", tuple(items), headline="group_score")
