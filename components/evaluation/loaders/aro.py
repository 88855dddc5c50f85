"""ARO VG-Relation and VG-Attribution (Yuksekgonul et al. 2023), as the authors load them.

Each record has ``image_path`` (relative to ``<root>/images``), a bbox
``bbox_x, bbox_y, bbox_w, bbox_h`` the image is cropped to, ``true_caption`` and
``false_caption``. The reference loader emits ``caption_options=[false, true]``, so the
correct index is 1. The paper number is the macro average of per-category accuracy:
per ``relation_name`` for VG-Relation, per attribute pair ``"<a0>_<a1>"`` for
VG-Attribution, where pairs with fewer than 25 items are skipped.
"""

from __future__ import annotations

from pathlib import Path

from components.evaluation.benchmark import (
    Benchmark,
    BenchmarkError,
    BenchmarkItem,
    check_images_exist,
)
from components.evaluation.loaders.common import (
    get_field,
    get_text,
    image_ref,
    read_json,
    rebase,
    require_dir,
)

FILES = {
    "vg_relation": "visual_genome_relation.json",
    "vg_attribution": "visual_genome_attribution.json",
}
ATTRIBUTION_MIN_PAIR_SIZE = 25


def _bbox(record: dict, path: Path, where: str) -> tuple[float, float, float, float]:
    box = []
    for key in ("bbox_x", "bbox_y", "bbox_w", "bbox_h"):
        value = get_field(record, key, path, where)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BenchmarkError(f"{path}: {where} field {key!r} must be a number, got {value!r}")
        box.append(float(value))
    if box[2] <= 0 or box[3] <= 0:
        raise BenchmarkError(f"{path}: {where} has an empty bbox {box}")
    return box[0], box[1], box[2], box[3]


def _category(record: dict, subset: str, path: Path, where: str) -> str:
    if subset == "vg_relation":
        return get_text(record, "relation_name", path, where)
    attributes = get_field(record, "attributes", path, where)
    if not isinstance(attributes, list) or len(attributes) != 2:
        raise BenchmarkError(f"{path}: {where} field 'attributes' must be a pair of strings")
    return f"{attributes[0]}_{attributes[1]}"


def load_aro(
    root: Path, subset: str, image_dir: Path | None = None, check_images: bool = True
) -> Benchmark:
    """VG-Relation or VG-Attribution from ``root/<file>.json`` and ``root/images``."""
    if subset not in FILES:
        raise BenchmarkError(f"unknown ARO subset {subset!r}; expected one of {list(FILES)}")
    path = root / FILES[subset]
    records = read_json(path, "ARO annotation file from mertyg/vision-language-models-are-bows")
    if not isinstance(records, list):
        raise BenchmarkError(f"{path} must be a JSON list of records")
    images = require_dir(image_dir or root / "images", "the ARO vgr_vga_images.zip contents")
    items = []
    for index, record in enumerate(records):
        where = f"record {index}"
        items.append(
            BenchmarkItem(
                item_id=f"{subset}/{index}",
                images=(
                    image_ref(
                        images,
                        rebase(get_text(record, "image_path", path, where), images),
                        bbox=_bbox(record, path, where),
                    ),
                ),
                texts=(
                    get_text(record, "false_caption", path, where),
                    get_text(record, "true_caption", path, where),
                ),
                correct_text=(1,),
                category=_category(record, subset, path, where),
            )
        )
    if check_images:
        check_images_exist(items, path)
    min_size = ATTRIBUTION_MIN_PAIR_SIZE if subset == "vg_attribution" else 1
    return Benchmark(
        f"aro/{subset}", tuple(items), headline="macro_accuracy", min_category_size=min_size
    )
