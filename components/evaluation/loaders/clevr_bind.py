"""CLEVR-bind suites of "Does CLIP Bind Concepts?" (Lewis et al., clip-binding repo).

Layout as in the authors' ``datasets/read_datasets.py``, under ``root``:
- ``single_object/{train,val,test}.csv`` with images in ``single_object/images/``;
- ``two_object/{train,val,gen}.csv`` with images in ``two_object/images/<split>/``;
- ``rel/{train,val,gen}.json`` with images in ``rel/images/<split>/``.
CSVs have ``file_name, pos, neg_0..neg_3`` (pos correct). The rel JSON maps an image to
``{"pos": ["cube left sphere", ...]}``; each positive "a R b" becomes one item with the
reference distractors b R a, a R' b (opposite relation), c R b and a R c, where c is the
third shape. The reference shuffles the five; we keep the positive first (metrics are
order-free because ties count as wrong).
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
    read_csv,
    read_json,
    require_dir,
)

SPLITS = ("train", "val", "gen")
SHAPES = ("cube", "sphere", "cylinder")
OPPOSITE_RELATION = {"front": "behind", "behind": "front", "left": "right", "right": "left"}
CSV_COLUMNS = ("file_name", "pos", "neg_0", "neg_1", "neg_2", "neg_3")


def _csv_items(root: Path, task: str, split: str, image_dir: Path | None) -> tuple[Path, list]:
    # The authors' single-object generalisation split is stored as test.csv.
    csv_name = "test" if (task == "single_object" and split == "gen") else split
    path = root / task / f"{csv_name}.csv"
    default_dir = root / task / "images" / ("" if task == "single_object" else split)
    images = require_dir(image_dir or default_dir, f"CLEVR-bind {task} images")
    rows = read_csv(path, CSV_COLUMNS, f"CLEVR-bind {task} labels")
    items = []
    for number, row in enumerate(rows):
        texts = tuple(row[c] for c in CSV_COLUMNS[1:])
        if not all(text and text.strip() for text in texts):
            raise BenchmarkError(f"{path}: row {number + 2} has an empty caption")
        items.append(
            BenchmarkItem(
                item_id=f"{task}/{split}/{number}",
                images=(image_ref(images, row["file_name"]),),
                texts=texts,
                correct_text=(0,),
                category=split,
            )
        )
    return path, items


def relation_distractors(positive: str) -> tuple[str, str, str, str]:
    """The four reference distractors of "a R b": b R a, a R' b, c R b, a R c."""
    words = positive.strip().split()
    if len(words) != 3 or words[1] not in OPPOSITE_RELATION:
        raise BenchmarkError(
            f"rel caption {positive!r} is not '<shape> <relation> <shape>' with a relation "
            f"in {sorted(OPPOSITE_RELATION)}"
        )
    subject, relation, obj = words
    others = [shape for shape in SHAPES if shape not in (subject, obj)]
    if len(others) != 1:
        raise BenchmarkError(f"rel caption {positive!r} must name two different shapes of {SHAPES}")
    other = others[0]
    return (
        f"{obj} {relation} {subject}",
        f"{subject} {OPPOSITE_RELATION[relation]} {obj}",
        f"{other} {relation} {obj}",
        f"{subject} {relation} {other}",
    )


def _rel_items(root: Path, split: str, image_dir: Path | None) -> tuple[Path, list]:
    path = root / "rel" / f"{split}.json"
    labels = read_json(path, "CLEVR-bind rel labels")
    if not isinstance(labels, dict):
        raise BenchmarkError(f"{path} must map image file names to {{'pos': [...]}}")
    images = require_dir(image_dir or root / "rel" / "images" / split, "CLEVR-bind rel images")
    items = []
    for image_name, entry in labels.items():
        positives = get_field(entry, "pos", path, f"image {image_name!r}")
        if not isinstance(positives, list):
            raise BenchmarkError(f"{path}: image {image_name!r} field 'pos' must be a list")
        for k in range(len(positives)):
            positive = get_text(positives, k, path, f"image {image_name!r} pos")
            items.append(
                BenchmarkItem(
                    item_id=f"rel/{split}/{image_name}/{k}",
                    images=(image_ref(images, image_name),),
                    texts=(positive, *relation_distractors(positive)),
                    correct_text=(0,),
                    category=positive.split()[1],
                )
            )
    return path, items


def load_clevr_bind(
    root: Path,
    task: str,
    split: str = "gen",
    image_dir: Path | None = None,
    check_images: bool = True,
) -> Benchmark:
    """One CLEVR-bind task (single_object, two_object, rel) and split (train, val, gen)."""
    if split not in SPLITS:
        raise BenchmarkError(f"unknown CLEVR-bind split {split!r}; expected one of {SPLITS}")
    if task in ("single_object", "two_object"):
        path, items = _csv_items(root, task, split, image_dir)
    elif task == "rel":
        path, items = _rel_items(root, split, image_dir)
    else:
        raise BenchmarkError(
            f"unknown CLEVR-bind task {task!r}; expected single_object, two_object or rel"
        )
    if check_images:
        check_images_exist(items, path)
    return Benchmark(f"clevr_bind/{task}/{split}", tuple(items))
