"""Real image-caption sources -> raw samples -> validated rows, every bad sample a named reject.

Source kinds (``SourceSpec.kind``), each read by ``components.data.sources``:
    webdataset     tar shards of ``KEY.jpg|png|webp`` + ``KEY.txt`` or ``KEY.json`` (img2dataset
                   ``webdataset`` output, or any WebDataset)
    parquet        Parquet with an image column of bytes, paths, or HF-datasets
                   ``struct<bytes, path>`` (img2dataset ``parquet`` output, HF ``datasets``)
    files          img2dataset ``files`` output: ``SSSSS/KEY.jpg`` + ``KEY.txt`` / ``KEY.json``
    coco           a COCO captions JSON (one row per annotation) and its image folder
    visual_genome  VG ``scene_graphs.json`` / ``relationships.json`` (+ ``attributes.json``):
                   gold graphs, one row per image, no parser needed
    gqa            GQA ``*_sceneGraphs.json``: gold graphs, one row per image
``path`` is a file, folder, URI (``s3://``...), glob or brace pattern (components.data.storage).

Nothing a record holds is trusted: captions must be strict UTF-8 without control or
bidi-override characters, image dimensions are checked from the header before any pixel
is decoded, image paths must stay inside their root, ids must be present and unique. Each
failure is a reject with its reason and the good rows survive (DESIGN.md, conventions).
"""

from __future__ import annotations

import io
import re
import unicodedata
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from components.config import check

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
CAPTION_JSON_KEYS = ("caption", "text", "txt")
# Bidi embeddings/overrides/isolates: they make a caption display as something it is not.
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


@dataclass
class SourceSpec:
    """Where the samples are and how to read them (one dataclass for every kind)."""

    kind: str = "webdataset"  # webdataset | parquet | files | coco | visual_genome | gqa
    path: str = ""  # file, folder, URI, glob or {00000..00009} pattern
    image_root: str = ""  # relative image paths resolve here; "" = beside the source file
    image_column: str = ""  # parquet; "" = the first of image, jpg, png, webp, jpeg
    caption_column: str = "caption"  # parquet
    id_column: str = ""  # parquet; "" = id or key, else file stem + row number
    max_relations: int = 4  # visual_genome / gqa: relations kept per image graph

    def validate(self) -> None:
        kinds = ("webdataset", "parquet", "files", "coco", "visual_genome", "gqa")
        check(self.kind in kinds, "kind", self.kind, f"one of {', '.join(kinds)}")
        check(self.max_relations > 0, "max_relations", self.max_relations, "a positive integer")


@dataclass
class IngestLimits:
    """What a usable sample is; anything outside is a reject with the limit named."""

    max_image_bytes: int = 20_000_000  # larger encoded images are rejected (image_too_large)
    min_image_side: int = 8  # pixels; smaller images are rejected
    max_image_side: int = 8192  # pixels; larger images are rejected (read from the header)
    max_pixels: int = 40_000_000  # checked from the header, before decoding
    max_caption_chars: int = 1000  # longer captions are rejected
    # image formats accepted (PIL names)
    formats: list[str] = field(default_factory=lambda: ["JPEG", "PNG", "WEBP"])

    def validate(self) -> None:
        for key in ("max_image_bytes", "min_image_side", "max_image_side", "max_pixels"):
            check(getattr(self, key) > 0, key, getattr(self, key), "a positive integer")
        check(self.max_caption_chars > 0, "max_caption_chars", self.max_caption_chars, "> 0")


@dataclass(frozen=True)
class RawSample:
    """One sample as the source has it; ``error`` set when it could not even be read.

    ``caption`` may still be bytes (checked as strict UTF-8 in validation); ``group`` is
    the key the split is drawn from (the image, so captions of one image share a split);
    ``graph`` is a gold scene graph (dict) from a scene-graph source, else None.
    """

    id: str
    caption: str | bytes | None
    image: bytes | None
    error: str | None = None
    detail: str | None = None
    group: str | None = None
    graph: dict[str, Any] | None = None


def iter_samples(spec: SourceSpec, rows_per_unit: int = 1000) -> Iterator[RawSample]:
    """Raw samples of a source read one unit after another in this process (no Ray).

    The same per-unit readers the Ray path runs in workers, so tests and the driver-side
    baseline of benchmarks/ingest.py see exactly what a build sees.
    """
    from components.data.sources import list_units, read_unit

    for unit in list_units(spec, rows_per_unit):
        yield from read_unit(spec, unit)


# -- validation --------------------------------------------------------------------------


def clean_caption(caption: Any) -> str:
    """Whitespace-normalised caption text ("" when there is none or it is not text)."""
    return " ".join(caption.split()) if isinstance(caption, str) else ""


def caption_text(caption: Any) -> tuple[str | None, str | None, str | None]:
    """(clean text, reject reason, detail): strict UTF-8, no control or bidi characters."""
    if isinstance(caption, bytes | bytearray | memoryview):
        try:
            caption = bytes(caption).decode("utf-8")
        except UnicodeDecodeError as err:
            return None, "invalid_utf8", str(err)[:200]
    if not isinstance(caption, str):
        return None, "empty_caption", None if caption is None else type(caption).__name__
    try:
        caption.encode("utf-8")
    except UnicodeEncodeError as err:  # a lone surrogate ("\ud800") from JSON escapes
        return None, "invalid_utf8", str(err)[:200]
    controls = sorted(
        {
            f"U+{ord(c):04X}"
            for c in caption
            if c not in "\t\n\r" and unicodedata.category(c) == "Cc"
        }
        | {f"U+{ord(c):04X}" for c in _BIDI_CONTROLS.findall(caption)}
    )
    if controls:
        return None, "control_characters", " ".join(controls[:8])
    text = clean_caption(caption)
    return (text, None, None) if text else (None, "empty_caption", None)


def validate_sample(sample: RawSample, limits: IngestLimits) -> tuple[str | None, str | None]:
    """(reject reason, detail), or (None, None) when the sample is usable."""
    if sample.error is not None:
        return sample.error, sample.detail
    caption, reason, detail = caption_text(sample.caption)
    if reason is not None:
        return reason, detail
    if len(caption) > limits.max_caption_chars:
        return "caption_too_long", f"{len(caption)} > {limits.max_caption_chars} chars"
    if sample.image is None:
        return "missing_image", None
    if len(sample.image) > limits.max_image_bytes:
        return "image_too_large", f"{len(sample.image)} > {limits.max_image_bytes} bytes"
    return check_image(sample.image, limits)


_DECODE_ERRORS = (OSError, SyntaxError, ValueError)


def check_image(data: bytes, limits: IngestLimits) -> tuple[str | None, str | None]:
    """Size and format from the header first (a 13000x13000 PNG costs nothing to refuse),
    then a full decode (``verify`` misses truncation, ``load`` does not)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():  # the bomb warning: the size check below decides
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:  # reads the header only
                width, height, fmt = image.width, image.height, image.format
    except (UnidentifiedImageError, Image.DecompressionBombError, *_DECODE_ERRORS) as err:
        return "corrupt_image", f"{type(err).__name__}: {err}"[:300]
    if fmt not in limits.formats:
        return "unsupported_format", f"{fmt} not in {limits.formats}"
    if max(width, height) > limits.max_image_side or width * height > limits.max_pixels:
        return "image_too_large", (
            f"{width}x{height} > side {limits.max_image_side} or {limits.max_pixels} pixels"
        )
    if min(width, height) < limits.min_image_side:
        return "image_too_small", f"{width}x{height} < {limits.min_image_side}"
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except (UnidentifiedImageError, Image.DecompressionBombError, *_DECODE_ERRORS) as err:
        return "corrupt_image", f"{type(err).__name__}: {err}"[:300]
    return None, None
