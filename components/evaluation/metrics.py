"""Benchmark metrics on top of the Scorer protocol, defined once for every model.

An item is right when the correct candidate scores *strictly* above every other one: a
scorer that returns ties (a constant, or a saturated score) must not look good because
of where a loader put the answer (ARO puts it last, WhatsUp first). Winoground's text,
image and group scores follow Thrush et al. 2022 (also strict).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
from PIL import Image
from tqdm.auto import tqdm

from components.evaluation.benchmark import (
    Benchmark,
    BenchmarkError,
    BenchmarkFileMissing,
    BenchmarkItem,
    ImageRef,
    ImageSource,
    degenerate_reason,
    load_image,
)
from components.models.scorer import Scorer

T = TypeVar("T")


def text_correct(scores: torch.Tensor, correct_text: Sequence[int]) -> bool:
    """Each image's own caption beats every other caption for that image (row-wise)."""
    for row, correct in enumerate(correct_text):
        others = torch.cat([scores[row, :correct], scores[row, correct + 1 :]])
        if others.numel() and not bool((scores[row, correct] > others).all()):
            return False
    return True


def image_correct(scores: torch.Tensor, correct_text: Sequence[int]) -> bool:
    """Each caption prefers its own image over every other image (column-wise)."""
    for row, correct in enumerate(correct_text):
        column = scores[:, correct]
        others = torch.cat([column[:row], column[row + 1 :]])
        if others.numel() and not bool((column[row] > others).all()):
            return False
    return True


@dataclass(frozen=True)
class CategoryAccuracy:
    accuracy: float
    count: int


def accuracy_by_category(
    correct: Sequence[bool], categories: Sequence[str]
) -> dict[str, CategoryAccuracy]:
    """Accuracy and item count per category, categories sorted by name."""
    if len(correct) != len(categories):
        raise ValueError(f"{len(correct)} outcomes but {len(categories)} categories")
    outcomes: dict[str, list[bool]] = defaultdict(list)
    for is_correct, category in zip(correct, categories, strict=True):
        outcomes[category].append(is_correct)
    return {
        name: CategoryAccuracy(sum(values) / len(values), len(values))
        for name, values in sorted(outcomes.items())
    }


def macro_accuracy(per_category: dict[str, CategoryAccuracy], min_count: int = 1) -> float:
    """Unweighted mean over categories with at least ``min_count`` items (ARO's number)."""
    kept = [c.accuracy for c in per_category.values() if c.count >= min_count]
    if not kept:
        raise ValueError(f"no category has at least {min_count} items")
    return sum(kept) / len(kept)


def group_accuracy(correct: Sequence[bool], groups: Sequence[str]) -> float:
    """Fraction of groups whose items are all correct (WhatsUp pair and set accuracy)."""
    all_right: dict[str, bool] = {}
    for is_correct, group in zip(correct, groups, strict=True):
        all_right[group] = all_right.get(group, True) and is_correct
    if not all_right:
        raise ValueError("no groups to score")
    return sum(all_right.values()) / len(all_right)


def winoground_scores(tables: Iterable[torch.Tensor]) -> dict[str, float]:
    """Text, image and group score over 2x2 tables indexed [image, caption].

    text:  s(c0,i0) > s(c1,i0) and s(c1,i1) > s(c0,i1)
    image: s(c0,i0) > s(c0,i1) and s(c1,i1) > s(c1,i0)
    group: both.
    """
    text_hits = image_hits = group_hits = total = 0
    for table in tables:
        if tuple(table.shape) != (2, 2):
            raise ValueError(
                f"Winoground tables are 2x2 [image, caption], got {tuple(table.shape)}"
            )
        text_ok = text_correct(table, (0, 1))
        image_ok = image_correct(table, (0, 1))
        text_hits += text_ok
        image_hits += image_ok
        group_hits += text_ok and image_ok
        total += 1
    if total == 0:
        raise ValueError("no Winoground tables to score")
    return {
        "text_score": text_hits / total,
        "image_score": image_hits / total,
        "group_score": group_hits / total,
    }


@dataclass(frozen=True)
class ItemResult:
    """One item's scores (``[n_images, n_texts]``, CPU float) and outcome, for galleries."""

    item: BenchmarkItem
    scores: torch.Tensor
    text_correct: bool
    image_correct: bool | None  # None for single-image items, where it is meaningless

    @property
    def group_correct(self) -> bool:
        return self.text_correct and self.image_correct is not False


# Why an item is left out of every number (SkippedItem.reason).
UNREADABLE_IMAGE = "unreadable_image"  # an image of the item cannot be decoded
DEGENERATE = "degenerate"  # its correct text equals another candidate: it cannot be won


@dataclass(frozen=True)
class SkippedItem:
    """An item not scored, with its reason and detail; counted in `EvalResult.summary`."""

    item: BenchmarkItem
    reason: str
    detail: str


@dataclass(frozen=True)
class EvalResult:
    """Every item's outcome on one benchmark for one scorer, plus the paper's aggregates.

    ``skipped`` items are outside every accuracy; the summary counts them (``n_skipped``
    and ``n_<reason>``) so a number over fewer items never passes for one over all.
    """

    benchmark: Benchmark
    scorer_name: str
    items: tuple[ItemResult, ...]
    skipped: tuple[SkippedItem, ...] = ()

    def per_category(self) -> dict[str, CategoryAccuracy]:
        """Text accuracy per item category (relation, attribute pair, preposition, split)."""
        return accuracy_by_category(
            [r.text_correct for r in self.items], [r.item.category for r in self.items]
        )

    def summary(self) -> dict[str, float]:
        """Flat numbers for results.json and MLflow: accuracy, macro, Winoground, groups."""
        if not self.items:
            raise ValueError(
                f"benchmark {self.benchmark.name} has no scored items "
                f"({len(self.skipped)} skipped: {self.skip_counts()})"
            )
        outcomes = [r.text_correct for r in self.items]
        numbers = {"n_items": float(len(self.items)), "accuracy": sum(outcomes) / len(outcomes)}
        if self.skipped:
            numbers["n_skipped"] = float(len(self.skipped))
            numbers.update({f"n_{k}": float(v) for k, v in self.skip_counts().items()})
        per_category = self.per_category()
        if len(per_category) > 1 or self.benchmark.headline == "macro_accuracy":
            numbers["macro_accuracy"] = macro_accuracy(
                per_category, self.benchmark.min_category_size
            )
        if any(r.image_correct is not None for r in self.items):
            numbers["text_score"] = numbers["accuracy"]
            numbers["image_score"] = sum(bool(r.image_correct) for r in self.items) / len(outcomes)
            numbers["group_score"] = sum(r.group_correct for r in self.items) / len(outcomes)
        for tag in self.benchmark.group_tags:
            groups = [r.item.tags[tag] for r in self.items]
            numbers[f"{tag}_accuracy"] = group_accuracy(outcomes, groups)
        return numbers

    def unscored_note(self) -> str:
        """Why a suite with every item skipped has no number, counted by reason; reported
        in its place so the other suites' numbers still come out."""
        reasons = ", ".join(f"{k} {v}" for k, v in self.skip_counts().items())
        return (
            f"no scorable items ({len(self.skipped)} of {len(self.benchmark)} skipped: {reasons})"
        )

    def skip_counts(self) -> dict[str, int]:
        """Skipped items per reason, reasons sorted by name."""
        counts: dict[str, int] = defaultdict(int)
        for skip in self.skipped:
            counts[skip.reason] += 1
        return dict(sorted(counts.items()))

    def headline(self) -> float:
        """The single number a results table quotes for this benchmark."""
        return self.summary()[self.benchmark.headline]

    def failures(self) -> list[ItemResult]:
        """Items the scorer got wrong (text or, for Winoground, group), for the gallery."""
        return [r for r in self.items if not r.group_correct]


def _unique(
    values: Iterable[T], key: Callable[[T], Hashable]
) -> tuple[list[T], dict[Hashable, int]]:
    """Distinct values in first-seen order and a key -> position map."""
    distinct: list[T] = []
    position: dict[Hashable, int] = {}
    for value in values:
        k = key(value)
        if k not in position:
            position[k] = len(distinct)
            distinct.append(value)
    return distinct, position


def _image_key(source: ImageSource) -> Hashable:
    # ImageRefs compare by path and crop; in-memory images only by identity.
    return source if isinstance(source, ImageRef) else id(source)


def load_batch_images(
    items: Sequence[BenchmarkItem],
) -> tuple[dict[Hashable, Image.Image], dict[int, tuple[str, str]]]:
    """Decoded images of ``items`` by key, and {position in items: (skip reason, error)}
    for items with an image that cannot be read (corrupt, truncated or vanished since the
    start check: unreadable_image) or is refused (`ImageRefused`: its own reason)."""
    loaded: dict[Hashable, Image.Image] = {}
    errors: dict[Hashable, tuple[str, str]] = {}
    for source in (im for it in items for im in it.images):
        key = _image_key(source)
        if key in loaded or key in errors:
            continue
        try:
            loaded[key] = load_image(source)
        except (BenchmarkError, BenchmarkFileMissing) as err:
            errors[key] = (getattr(err, "reason", UNREADABLE_IMAGE), str(err))
    bad = {
        k: errors[_image_key(im)]
        for k, it in enumerate(items)
        for im in it.images
        if _image_key(im) in errors
    }
    return loaded, bad


def score_items(
    scorer: Scorer,
    items: Sequence[BenchmarkItem],
    loaded: dict[Hashable, Image.Image] | None = None,
) -> list[torch.Tensor]:
    """Score several items with one ``scorer.score`` call and slice out each item's block.

    Images and texts shared between the items are scored once. Off-block pairs (item a's
    image with item b's captions) are computed and thrown away, which is cheap for pooled
    cosine (CLIP) but not for per-pair scorers (DCSM's CNN), hence ``batch_size`` below.
    ``loaded`` holds images already decoded (`load_batch_images`), keyed by image.
    """
    loaded = loaded or {}
    images, image_pos = _unique((im for it in items for im in it.images), _image_key)
    texts, text_pos = _unique((t for it in items for t in it.texts), lambda t: t)
    pil_images: list[Image.Image] = [
        loaded[_image_key(source)] if _image_key(source) in loaded else load_image(source)
        for source in images
    ]
    scores = scorer.score(pil_images, texts)
    if tuple(scores.shape) != (len(images), len(texts)):
        raise ValueError(
            f"scorer {scorer.name} returned shape {tuple(scores.shape)} for "
            f"{len(images)} images x {len(texts)} texts"
        )
    scores = scores.detach().float().cpu()
    blocks = []
    for item in items:
        rows = torch.tensor([image_pos[_image_key(im)] for im in item.images])
        cols = torch.tensor([text_pos[t] for t in item.texts])
        blocks.append(scores[rows][:, cols])  # (n_images, n_texts) of this item
    return blocks


def evaluate(
    scorer: Scorer, benchmark: Benchmark, batch_size: int = 1, progress: bool = True
) -> EvalResult:
    """Score every item of ``benchmark`` and keep per-item scores for tables and galleries.

    ``batch_size`` items share one ``scorer.score`` call. Use 1 for scorers whose cost is
    per (image, text) pair (OC-CLIP, DCSM); use tens for pooled-embedding scorers (CLIP),
    where one call with more images beats many small ones. Only ``batch_size`` items'
    images are decoded at a time.

    Items are skipped, counted and kept in ``skipped`` rather than ending the run: an item
    whose image cannot be decoded (``unreadable_image``; the rest of its batch is scored)
    and an item whose correct text equals another candidate (``degenerate``: a forced tie
    that the strict rule would count as wrong for every model).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    results: list[ItemResult] = []
    skipped: list[SkippedItem] = []
    items = []
    for item in benchmark.items:
        reason = degenerate_reason(item)
        if reason is None:
            items.append(item)
        else:
            skipped.append(SkippedItem(item, DEGENERATE, reason))
    starts = range(0, len(items), batch_size)
    with torch.no_grad():
        for start in tqdm(starts, desc=f"{scorer.name} on {benchmark.name}", disable=not progress):
            batch = items[start : start + batch_size]
            loaded, bad = load_batch_images(batch)
            skipped += [SkippedItem(batch[k], *bad[k]) for k in sorted(bad)]
            batch = [item for k, item in enumerate(batch) if k not in bad]
            if not batch:
                continue
            for item, scores in zip(batch, score_items(scorer, batch, loaded), strict=True):
                results.append(
                    ItemResult(
                        item=item,
                        scores=scores,
                        text_correct=text_correct(scores, item.correct_text),
                        image_correct=(
                            image_correct(scores, item.correct_text)
                            if len(item.images) > 1
                            else None
                        ),
                    )
                )
    return EvalResult(benchmark, scorer.name, tuple(results), tuple(skipped))
