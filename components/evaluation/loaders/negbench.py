"""NegBench multiple-choice suites (Alhamoud et al. 2025, m1k2zoo/negbench).

Each ``*_mcq_llama3.1_rephrased.csv`` row is one image and K=4 captions. The released
files name the columns ``image_path``, ``caption_0..caption_3``, ``correct_answer`` (index
of the right caption) and ``correct_answer_template`` (question type: affirmation,
negation or hybrid), which becomes the category. Files re-exported with other names are
read by passing ``columns`` (an `McqColumns` or a dict of its fields); ``correct=None``
means the first option is correct, the convention of DCSM's re-ordered copies.
``image_path`` holds the authors' absolute paths, so images are rebased by basename into
``image_dir`` (default ``root``) unless the path exists as written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.evaluation.benchmark import (
    Benchmark,
    BenchmarkError,
    BenchmarkItem,
    check_images_exist,
)
from components.evaluation.loaders.common import image_ref, read_csv, rebase

FILES = {
    "coco_mcq": "COCO_val_mcq_llama3.1_rephrased.csv",
    "voc_mcq": "VOC2007_mcq_llama3.1_rephrased.csv",
    "synthetic_mcq": "synthetic_mcq_llama3.1_rephrased.csv",
}


@dataclass(frozen=True)
class McqColumns:
    """Which CSV column holds what; ``None`` for correct/category means absent."""

    image: str = "image_path"
    options: tuple[str, ...] = ("caption_0", "caption_1", "caption_2", "caption_3")
    correct: str | None = "correct_answer"
    category: str | None = "correct_answer_template"

    @classmethod
    def from_option(cls, value: McqColumns | Mapping[str, Any] | None) -> McqColumns:
        """Accept the dataclass, a dict from a YAML config, or None for the defaults."""
        if value is None:
            return cls()
        if isinstance(value, McqColumns):
            return value
        unknown = set(value) - {"image", "options", "correct", "category"}
        if unknown:
            raise BenchmarkError(f"unknown NegBench column mapping keys {sorted(unknown)}")
        fields = dict(value)
        if "options" in fields:
            fields["options"] = tuple(fields["options"])
        return cls(**fields)


def _correct_index(raw: str, n_options: int, path: Path, where: str) -> int:
    try:
        index = int(float(raw))
    except ValueError:
        raise BenchmarkError(f"{path}: {where} correct answer {raw!r} is not an index") from None
    if not 0 <= index < n_options:
        raise BenchmarkError(f"{path}: {where} correct answer {index} outside {n_options} options")
    return index


def load_negbench_csv(
    path: Path,
    image_dir: Path,
    name: str,
    columns: McqColumns | Mapping[str, Any] | None = None,
    check_images: bool = True,
) -> Benchmark:
    """Any NegBench-style MCQ CSV, with images resolved under ``image_dir``."""
    cols = McqColumns.from_option(columns)
    required = [cols.image, *cols.options]
    required += [c for c in (cols.correct, cols.category) if c is not None]
    rows = read_csv(path, required, "NegBench MCQ CSV from the authors' Drive folder")
    items = []
    for number, row in enumerate(rows):
        where = f"row {number + 2}"  # +1 for the header, +1 for 1-based line numbers
        texts = tuple(row[c] or "" for c in cols.options)
        if not all(text.strip() for text in texts):
            raise BenchmarkError(f"{path}: {where} has an empty caption in {cols.options}")
        if not (row[cols.image] or "").strip():
            raise BenchmarkError(f"{path}: {where} has an empty {cols.image!r}")
        correct = (
            0
            if cols.correct is None
            else _correct_index(row[cols.correct], len(texts), path, where)
        )
        items.append(
            BenchmarkItem(
                item_id=f"{name}/{number}",
                images=(image_ref(image_dir, rebase(row[cols.image], image_dir)),),
                texts=texts,
                correct_text=(correct,),
                category="" if cols.category is None else row[cols.category],
            )
        )
    if check_images:
        check_images_exist(items, path)
    return Benchmark(name, tuple(items))


def load_negbench(
    root: Path,
    subset: str,
    image_dir: Path | None = None,
    columns: McqColumns | Mapping[str, Any] | None = None,
    check_images: bool = True,
) -> Benchmark:
    """A released NegBench MCQ file ``root/<file>.csv`` (see `FILES`)."""
    if subset not in FILES:
        raise BenchmarkError(f"unknown NegBench subset {subset!r}; expected one of {list(FILES)}")
    return load_negbench_csv(
        root / FILES[subset], image_dir or root, f"negbench/{subset}", columns, check_images
    )
