"""A benchmark is a named list of items; an item is images, candidate texts and the answer.

Every public suite (SugarCrepe, ARO, WhatsUp, NegBench, CLEVR-bind, Winoground) and our
synthetic suites reduce to this one shape, so `evaluate` never special-cases a benchmark.
Images stay lazy (`ImageRef`: a path plus an optional bbox crop) so a 28k-item suite is a
list of paths until an item is scored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from PIL import Image

from components.data.ingest.validate import ImageRejected, decode_rgb


class BenchmarkError(ValueError):
    """A benchmark file or item that does not fit its format; the message names it."""


class BenchmarkFileMissing(FileNotFoundError):
    """An annotation file or image a benchmark needs is not on disk."""


class ImageRefused(BenchmarkError):
    """An image that is not opened or not scored; ``reason`` is the skip reason counted
    (path_outside_root, image_too_large, unsupported_mode)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ImageRef:
    """An image on disk, optionally cropped to ``bbox`` = (x, y, w, h) in pixels (ARO).

    ``refused`` is set by a loader for a path that leaves its image folder (absolute,
    ``../``, or a symlink out of it): the item is then a counted skip, and the file is
    never opened.
    """

    path: Path
    bbox: tuple[float, float, float, float] | None = None
    refused: str | None = None

    def load(self) -> Image.Image:
        """Open as RGB the way ingest does (size capped from the header, 16-bit scaled) and
        apply the crop; errors name the file."""
        if self.refused is not None:
            raise ImageRefused("path_outside_root", f"image {self.path}: {self.refused}")
        if not self.path.is_file():
            raise BenchmarkFileMissing(f"image {self.path} does not exist")
        try:
            image = decode_rgb(self.path)
        except ImageRejected as err:
            if err.reason == "corrupt_image":
                raise BenchmarkError(f"image {self.path} cannot be decoded: {err.detail}") from err
            raise ImageRefused(err.reason, f"image {self.path}: {err}") from err
        if self.bbox is None:
            return image
        x, y, w, h = self.bbox
        # PIL's box is (left, upper, right, lower), exclusive on the right/lower side.
        return image.crop((x, y, x + w, y + h))


ImageSource = ImageRef | Image.Image


def load_image(source: ImageSource) -> Image.Image:
    """A PIL image from either an in-memory image or a lazy reference."""
    return source.load() if isinstance(source, ImageRef) else source


@dataclass(frozen=True)
class BenchmarkItem:
    """One test case: ``images`` x ``texts``; ``correct_text[i]`` is the text of ``images[i]``.

    Multiple-choice items have one image (``correct_text=(k,)``); Winoground items have two
    images and two captions (``correct_text=(0, 1)``), which is what its image score needs.
    ``tags`` hold grouping keys for group metrics (WhatsUp pair/set accuracy).
    """

    item_id: str
    images: tuple[ImageSource, ...]
    texts: tuple[str, ...]
    correct_text: tuple[int, ...]
    category: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.images:
            raise BenchmarkError(f"item {self.item_id}: no images")
        if len(self.correct_text) != len(self.images):
            raise BenchmarkError(
                f"item {self.item_id}: {len(self.images)} images but "
                f"{len(self.correct_text)} correct_text entries"
            )
        for index in self.correct_text:
            if not 0 <= index < len(self.texts):
                raise BenchmarkError(
                    f"item {self.item_id}: correct text index {index} outside "
                    f"{len(self.texts)} candidates"
                )


@dataclass(frozen=True)
class Benchmark:
    """A named suite plus how its paper reports it.

    ``headline`` is the metric a results table quotes: "accuracy" (micro over items),
    "macro_accuracy" (mean of per-category accuracies, ARO's number) or "group_score"
    (Winoground). Categories with fewer than ``min_category_size`` items are left out of
    the macro average (VG-Attribution skips attribute pairs with < 25 items).
    ``group_tags`` name item tags whose groups must be all-correct (WhatsUp pair/set).
    """

    name: str
    items: tuple[BenchmarkItem, ...]
    headline: str = "accuracy"
    min_category_size: int = 1
    group_tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.headline not in ("accuracy", "macro_accuracy", "group_score"):
            raise BenchmarkError(f"benchmark {self.name}: unknown headline {self.headline!r}")

    def __len__(self) -> int:
        return len(self.items)

    def map_texts(self, rewrite: Callable[[str], str]) -> Benchmark:
        """Same suite with every candidate rewritten (DCSM's prefixes and on->above rule)."""
        items = tuple(
            replace(item, texts=tuple(rewrite(text) for text in item.texts)) for item in self.items
        )
        return replace(self, items=items)

    def subset(self, limit: int) -> Benchmark:
        """The first ``limit`` items, for smoke runs."""
        return replace(self, items=self.items[:limit])


def degenerate_reason(item: BenchmarkItem) -> str | None:
    """Why ``item`` cannot be won, or None: a correct text equal to another candidate.

    A caption equal to its negative scores exactly as high under any scorer, so the strict
    rule (`metrics.text_correct`) marks it wrong whatever the model does; counting it would
    charge the model for a broken item. Texts compare after stripping outer whitespace.
    """
    texts = [text.strip() for text in item.texts]
    for correct in item.correct_text:
        twins = [k for k, text in enumerate(texts) if k != correct and text == texts[correct]]
        if twins:
            return f"correct text {correct} equals candidate {twins[0]}: {item.texts[correct]!r}"
    return None


def check_images_exist(items: Sequence[BenchmarkItem], source: Path | str) -> None:
    """Fail before scoring if any image is missing, naming the first few and the count.

    A stat per image is cheap next to decoding it, and finding a missing image after an
    hour of GPU scoring is not. Refused paths are not looked at: they are counted skips.
    """
    missing = [
        (item.item_id, image.path)
        for item in items
        for image in item.images
        if isinstance(image, ImageRef) and image.refused is None and not image.path.is_file()
    ]
    if missing:
        shown = "; ".join(f"item {item_id}: {path}" for item_id, path in missing[:3])
        raise BenchmarkFileMissing(
            f"{len(missing)} image(s) referenced by {source} are missing, e.g. {shown}"
        )
