"""Is a raw sample usable? Every bad sample becomes a named reject, the good rows survive.

Nothing a record holds is trusted: captions must be strict UTF-8 without control or
bidi-override characters, image dimensions are checked from the header before any pixel
is decoded, image paths must stay inside their root (the sources check that), ids must be
present and unique (the build checks that). Each failure is a reject with its reason
(docs/architecture.md, conventions).
"""

from __future__ import annotations

import io
import re
import unicodedata
import warnings
from dataclasses import dataclass, field
from typing import Any

from components.data.ingest.base import RawSample
from components.platform.config import check

# Bidi embeddings/overrides/isolates: they make a caption display as something it is not.
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


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
