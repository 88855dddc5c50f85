"""Is a raw sample usable? Every bad sample becomes a named reject, the good rows survive.

Nothing a record holds is trusted: captions must be strict UTF-8 without control or
bidi-override characters, image dimensions are checked from the header before any pixel
is decoded, an image must decode to RGB faithfully (16-bit grayscale is scaled, not
clipped; other modes are refused), image paths must stay inside their root (the sources
check that), ids must be present and unique (the build checks that). Each failure is a
reject with its reason (docs/architecture.md, conventions).

The image half (`too_large`, `to_eight_bit`, `decode_rgb`) is also how evaluation opens a
benchmark's images (components.evaluation.benchmark), so both sides cap and convert alike.
"""

from __future__ import annotations

import io
import re
import unicodedata
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

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
# Modes whose ``convert("RGB")`` keeps every value: 8 bits per channel (or 1-bit, palette).
EIGHT_BIT_MODES = frozenset(
    {"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}
)
SIXTEEN_BIT_MAX = 65535


class ImageRejected(ValueError):
    """An image no model should be given: ``reason`` is the reject (or skip) reason."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def too_large(width: int, height: int, limits: IngestLimits) -> str | None:
    """Why a ``width`` x ``height`` image is refused before decoding, or None; ingest and
    evaluation both cap images here, from the header alone."""
    if max(width, height) > limits.max_image_side or width * height > limits.max_pixels:
        return f"{width}x{height} > side {limits.max_image_side} or {limits.max_pixels} pixels"
    return None


def to_eight_bit(image: Image.Image) -> Image.Image:
    """``image`` in a mode that ``convert("RGB")`` takes faithfully.

    PIL opens a 16-bit grayscale PNG as ``I;16`` (``I`` in older versions) and its
    ``convert("RGB")`` clips every value above 255, so a mid-grey 30000 of 65535 becomes
    white. Those modes are scaled to 8 bits instead (v * 255 / 65535, rounded). 16-bit
    colour PNGs already open as 8-bit RGB (PIL keeps the high byte). Any other mode
    (float ``F``, 32-bit ``I`` values outside 0..65535) is refused: ``unsupported_mode``.
    """
    if image.mode in EIGHT_BIT_MODES:
        return image
    if image.mode.startswith("I"):
        wide = image if image.mode == "I" else image.convert("I")
        low, high = wide.getextrema()
        if low >= 0 and high <= SIXTEEN_BIT_MAX:
            pixels = np.asarray(wide, dtype=np.int64)  # (H, W)
            scaled = (pixels * 255 + SIXTEEN_BIT_MAX // 2) // SIXTEEN_BIT_MAX
            return Image.fromarray(scaled.astype(np.uint8))
        raise ImageRejected("unsupported_mode", f"mode {image.mode} with values {low}..{high}")
    raise ImageRejected("unsupported_mode", f"mode {image.mode} has no faithful 8-bit RGB form")


def _open_header(source: bytes | str | Path) -> Image.Image:
    """``Image.open`` without PIL's bomb warning (``too_large`` decides); reads the header."""
    file = io.BytesIO(source) if isinstance(source, bytes) else source
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(file)
        except Image.DecompressionBombError as err:  # PIL's own cap: far past ours
            raise ImageRejected("image_too_large", str(err)[:300]) from None
        except (UnidentifiedImageError, *_DECODE_ERRORS) as err:
            raise ImageRejected("corrupt_image", f"{type(err).__name__}: {err}"[:300]) from None


def decode_rgb(source: bytes | str | Path, limits: IngestLimits | None = None) -> Image.Image:
    """The RGB image a model is given, for evaluation as for ingest: the size capped from
    the header before any pixel is decoded, then decoded, 16-bit scaled (`to_eight_bit`).
    Raises ImageRejected (image_too_large, corrupt_image, unsupported_mode)."""
    limits = limits or IngestLimits()
    with _open_header(source) as image:
        problem = too_large(image.width, image.height, limits)
        if problem is not None:
            raise ImageRejected("image_too_large", problem)
        try:
            image.load()
        except (UnidentifiedImageError, Image.DecompressionBombError, *_DECODE_ERRORS) as err:
            raise ImageRejected("corrupt_image", f"{type(err).__name__}: {err}"[:300]) from None
        return to_eight_bit(image).convert("RGB")


def check_image(data: bytes, limits: IngestLimits) -> tuple[str | None, str | None]:
    """Size and format from the header first (a 13000x13000 PNG costs nothing to refuse),
    then a full decode (``verify`` misses truncation, ``load`` does not) and the mode."""
    try:
        with _open_header(data) as image:
            width, height, fmt = image.width, image.height, image.format
    except ImageRejected as err:
        return err.reason, err.detail
    if fmt not in limits.formats:
        return "unsupported_format", f"{fmt} not in {limits.formats}"
    problem = too_large(width, height, limits)
    if problem is not None:
        return "image_too_large", problem
    if min(width, height) < limits.min_image_side:
        return "image_too_small", f"{width}x{height} < {limits.min_image_side}"
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            to_eight_bit(image)
    except ImageRejected as err:
        return err.reason, err.detail
    except (UnidentifiedImageError, Image.DecompressionBombError, *_DECODE_ERRORS) as err:
        return "corrupt_image", f"{type(err).__name__}: {err}"[:300]
    return None, None


def stored_image(data: bytes) -> bytes:
    """The bytes a shard keeps for a valid image: ``data`` itself when its mode converts to
    RGB faithfully, else an 8-bit PNG of it (`to_eight_bit`), so that every reader of the
    shard (training, probes, evaluation) decodes the right pixels with a plain convert."""
    with _open_header(data) as image:
        if image.mode in EIGHT_BIT_MODES:
            return data
        eight_bit = to_eight_bit(image)
    buffer = io.BytesIO()
    eight_bit.save(buffer, format="PNG")
    return buffer.getvalue()
