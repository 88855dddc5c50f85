"""WhatsUp (Kamath et al. 2023, amitakamath/whatsup_vlms): spatial-relation suites.

In every set the first caption option is the correct one.
- Controlled-A ``controlled_images_dataset.json`` / Controlled-B
  ``controlled_clevr_dataset.json``: lists of ``{image_path, caption_options[4]}``. The
  image file name ``<objA>_<prep>[_of]_<objB>.jpeg`` carries the preposition, which gives
  the category and the pair/set groups of the paper's pair and set accuracy.
  ``image_path`` embeds the authors' data dir, so images are rebased by basename into
  ``<root>/controlled_images`` or ``<root>/controlled_clevr``.
- COCO-spatial ``coco_qa_{one,two}_obj.json`` and GQA-spatial ``vg_qa_{one,two}_obj.json``:
  lists of ``[image_id, correct, wrong]``; images are ``<root>/val2017/{id:012d}.jpg`` and
  ``<root>/vg_images/{id}.jpg``.
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

CONTROLLED = {
    # subset: (annotation file, image dir, {preposition slot: axis of its pair})
    "controlled_a": (
        "controlled_images_dataset.json",
        "controlled_images",
        {"left": "horizontal", "right": "horizontal", "on": "vertical", "under": "vertical"},
    ),
    "controlled_b": (
        "controlled_clevr_dataset.json",
        "controlled_clevr",
        {"left": "horizontal", "right": "horizontal", "in-front": "depth", "behind": "depth"},
    ),
}
SPATIAL_QA = {
    # subset: (annotation file, image dir, image id -> file name)
    "coco_spatial_one": ("coco_qa_one_obj.json", "val2017", lambda i: f"{int(i):012d}.jpg"),
    "coco_spatial_two": ("coco_qa_two_obj.json", "val2017", lambda i: f"{int(i):012d}.jpg"),
    "gqa_spatial_one": ("vg_qa_one_obj.json", "vg_images", lambda i: f"{i}.jpg"),
    "gqa_spatial_two": ("vg_qa_two_obj.json", "vg_images", lambda i: f"{i}.jpg"),
}
SUBSETS = (*CONTROLLED, *SPATIAL_QA)
# Two-object category rules of the reference evaluate_scores, checked in order.
TWO_OBJECT_PREPOSITIONS = {
    "coco": (("left of", "left"), ("right of", "right"), ("above", "above")),
    "gqa": (
        ("left of", "left"),
        ("right of", "right"),
        ("front of", "front"),
        ("behind", "behind"),
    ),
}
TWO_OBJECT_FALLBACK = {"coco": "below", "gqa": "top"}


def _controlled_items(root: Path, subset: str, image_dir: Path | None) -> tuple[Path, list]:
    filename, default_dir, axes = CONTROLLED[subset]
    path = root / filename
    records = read_json(path, f"WhatsUp {subset} annotations from amitakamath/whatsup_vlms")
    if not isinstance(records, list):
        raise BenchmarkError(f"{path} must be a JSON list of records")
    images = require_dir(image_dir or root / default_dir, f"WhatsUp {default_dir}.tar.gz contents")
    items = []
    for index, record in enumerate(records):
        where = f"record {index}"
        raw_path = get_text(record, "image_path", path, where)
        options = get_field(record, "caption_options", path, where)
        if not isinstance(options, list) or len(options) < 2:
            raise BenchmarkError(f"{path}: {where} caption_options must list >= 2 captions")
        texts = tuple(
            get_text(options, k, path, f"{where} caption_options") for k in range(len(options))
        )
        tokens = Path(raw_path.replace("\\", "/")).stem.split("_")
        preposition = tokens[1] if len(tokens) >= 3 else ""
        if preposition not in axes:
            raise BenchmarkError(
                f"{path}: {where} image name {raw_path!r} does not read "
                f"<objA>_<preposition>_<objB> with a preposition in {sorted(axes)}"
            )
        objects = f"{tokens[0]}|{tokens[-1]}"
        items.append(
            BenchmarkItem(
                item_id=f"{subset}/{index}",
                images=(image_ref(images, rebase(raw_path, images)),),
                texts=texts,
                correct_text=(0,),
                category=preposition,
                tags={"pair": f"{objects}|{axes[preposition]}", "set": objects},
            )
        )
    return path, items


def _two_object_category(caption: str, family: str) -> str:
    for phrase, category in TWO_OBJECT_PREPOSITIONS[family]:
        if phrase in caption:
            return category
    return TWO_OBJECT_FALLBACK[family]


def _spatial_qa_items(root: Path, subset: str, image_dir: Path | None) -> tuple[Path, list]:
    filename, default_dir, image_name = SPATIAL_QA[subset]
    family, objects = subset.split("_spatial_")
    path = root / filename
    records = read_json(path, f"WhatsUp {subset} annotations from amitakamath/whatsup_vlms")
    if not isinstance(records, list):
        raise BenchmarkError(f"{path} must be a JSON list of [image_id, correct, wrong]")
    images = require_dir(image_dir or root / default_dir, f"images for WhatsUp {subset}")
    items = []
    for index, record in enumerate(records):
        where = f"record {index}"
        if not isinstance(record, list) or len(record) != 3:
            raise BenchmarkError(f"{path}: {where} must be [image_id, correct, wrong]")
        image_id = record[0]
        correct = get_text(record, 1, path, where)
        try:
            image_file = image_name(image_id)
        except (TypeError, ValueError):
            raise BenchmarkError(f"{path}: {where} has a bad image id {image_id!r}") from None
        if objects == "one":
            category = correct.split()[-1]
        else:
            category = _two_object_category(correct, family)
        items.append(
            BenchmarkItem(
                item_id=f"{subset}/{index}",
                images=(image_ref(images, image_file),),
                texts=(correct, get_text(record, 2, path, where)),
                correct_text=(0,),
                category=category,
            )
        )
    return path, items


def load_whatsup(
    root: Path, subset: str, image_dir: Path | None = None, check_images: bool = True
) -> Benchmark:
    """One WhatsUp subset (see module docstring for files and image layout)."""
    if subset in CONTROLLED:
        path, items = _controlled_items(root, subset, image_dir)
        group_tags: tuple[str, ...] = ("pair", "set")
    elif subset in SPATIAL_QA:
        path, items = _spatial_qa_items(root, subset, image_dir)
        group_tags = ()
    else:
        raise BenchmarkError(f"unknown WhatsUp subset {subset!r}; expected one of {SUBSETS}")
    if check_images:
        check_images_exist(items, path)
    return Benchmark(f"whatsup/{subset}", tuple(items), group_tags=group_tags)
