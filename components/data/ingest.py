"""Real image-caption sources -> validated record rows, with every bad sample a named reject.

Three source kinds, read in a deterministic order so shard numbering is stable:
    parquet     a file or folder of Parquet with an image column holding bytes or paths
    webdataset  tar shards of ``KEY.jpg|png|webp`` + ``KEY.txt`` or ``KEY.json``
    coco        a COCO captions JSON (images + annotations) and its image folder;
                one row per annotation, since each caption is its own training pair
``iter_samples`` yields raw samples (bytes not yet trusted); ``validate_sample`` decides.
A corrupt or truncated image, a missing file, an empty or overlong caption each become a
reject with its reason, never a silent drop (DESIGN.md, conventions).
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
CAPTION_JSON_KEYS = ("caption", "text", "txt")


@dataclass
class SourceSpec:
    """Where the samples are and how to read them (one dataclass for every kind)."""

    kind: str = "parquet"  # parquet | webdataset | coco
    path: str = ""  # Parquet file/folder, tar file/folder, or COCO captions JSON
    image_root: str = ""  # folder for relative image paths (parquet paths, coco)
    image_column: str = "image"  # parquet: bytes or a path string
    caption_column: str = "caption"
    id_column: str = "id"  # parquet; row number when absent


@dataclass
class IngestLimits:
    """What a usable sample is; anything outside is a reject with the limit named."""

    max_image_bytes: int = 20_000_000
    min_image_side: int = 8
    max_image_side: int = 8192
    max_caption_chars: int = 1000
    formats: list[str] = field(default_factory=lambda: ["JPEG", "PNG", "WEBP"])


@dataclass(frozen=True)
class RawSample:
    """One sample as the source has it; ``error`` set when it could not even be read."""

    id: str
    caption: str | None
    image: bytes | None
    error: str | None = None
    detail: str | None = None


def iter_samples(spec: SourceSpec) -> Iterator[RawSample]:
    """Raw samples of a source, in a stable order (sorted files, file order within)."""
    readers = {
        "parquet": _parquet_samples,
        "webdataset": _webdataset_samples,
        "coco": _coco_samples,
    }
    if spec.kind not in readers:
        raise ValueError(f"source kind {spec.kind!r} is not one of {sorted(readers)}")
    if not Path(spec.path).exists():
        raise FileNotFoundError(f"{spec.kind} source {spec.path} does not exist")
    yield from readers[spec.kind](spec)


def _files(path: Path, suffixes: tuple[str, ...]) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.suffix.lower() in suffixes)


def _read_file(path: Path, sample_id: str, caption: str | None) -> RawSample:
    try:
        return RawSample(sample_id, caption, path.read_bytes())
    except FileNotFoundError:
        return RawSample(sample_id, caption, None, "missing_file", str(path))
    except OSError as err:
        return RawSample(sample_id, caption, None, "unreadable_file", f"{path}: {err}")


def _parquet_samples(spec: SourceSpec) -> Iterator[RawSample]:
    root = Path(spec.path)
    for file in _files(root, (".parquet",)):
        image_root = Path(spec.image_root) if spec.image_root else file.parent
        parquet = pq.ParquetFile(file)
        names = parquet.schema_arrow.names
        for column in (spec.image_column, spec.caption_column):
            if column not in names:
                raise ValueError(f"{file}: no column {column!r} (columns: {names})")
        columns = [spec.image_column, spec.caption_column]
        columns += [spec.id_column] if spec.id_column in names else []
        is_path = pa.types.is_string(parquet.schema_arrow.field(spec.image_column).type) or (
            pa.types.is_large_string(parquet.schema_arrow.field(spec.image_column).type)
        )
        row = 0
        for batch in parquet.iter_batches(batch_size=256, columns=columns):
            for record in batch.to_pylist():
                sample_id = str(record.get(spec.id_column) or f"{file.stem}-{row:08d}")
                caption, image = record[spec.caption_column], record[spec.image_column]
                row += 1
                if image is None:
                    yield RawSample(sample_id, caption, None, "missing_image", spec.image_column)
                elif is_path:
                    yield _read_file(image_root / image, sample_id, caption)
                else:
                    yield RawSample(sample_id, caption, image)


def _webdataset_samples(spec: SourceSpec) -> Iterator[RawSample]:
    for tar_path in _files(Path(spec.path), (".tar",)):
        try:
            with tarfile.open(tar_path) as tar:
                yield from _tar_samples(tar, tar_path.stem)
        except tarfile.TarError as err:
            yield RawSample(tar_path.stem, None, None, "unreadable_tar", f"{tar_path}: {err}")


def _tar_samples(tar: tarfile.TarFile, prefix: str) -> Iterator[RawSample]:
    """Group contiguous members by key (the name up to the first dot, as webdataset does)."""
    key, parts = None, {}
    for member in tar:
        if not member.isfile():
            continue
        name = member.name.rsplit("/", 1)[-1]
        if "." not in name:
            continue
        directory = member.name[: len(member.name) - len(name)]
        member_key, extension = directory + name.split(".", 1)[0], name.split(".", 1)[1].lower()
        if member_key != key:
            if key is not None:
                yield _wds_sample(f"{prefix}/{key}", parts)
            key, parts = member_key, {}
        parts[extension] = tar.extractfile(member).read()
    if key is not None:
        yield _wds_sample(f"{prefix}/{key}", parts)


def _wds_sample(sample_id: str, parts: dict[str, bytes]) -> RawSample:
    caption = None
    if "txt" in parts:
        caption = parts["txt"].decode("utf-8", errors="replace")
    elif "json" in parts:
        try:
            meta = json.loads(parts["json"])
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            return RawSample(sample_id, None, None, "bad_json", str(err))
        caption = next((meta[k] for k in CAPTION_JSON_KEYS if isinstance(meta.get(k), str)), None)
    image = next((parts[e] for e in IMAGE_EXTENSIONS if e in parts), None)
    if image is None:
        return RawSample(sample_id, caption, None, "missing_image", f"extensions {sorted(parts)}")
    return RawSample(sample_id, caption, image)


def _coco_samples(spec: SourceSpec) -> Iterator[RawSample]:
    path = Path(spec.path)
    data = json.loads(path.read_text())
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"{path}: COCO captions JSON needs a list under {key!r}")
    image_root = Path(spec.image_root) if spec.image_root else path.parent
    files = {image["id"]: image["file_name"] for image in data["images"]}
    for annotation in sorted(data["annotations"], key=lambda a: a["id"]):
        sample_id = f"coco-{annotation['id']}"
        caption = annotation.get("caption")
        file_name = files.get(annotation["image_id"])
        if file_name is None:
            yield RawSample(
                sample_id, caption, None, "missing_image", f"image_id {annotation['image_id']}"
            )
            continue
        yield _read_file(image_root / file_name, sample_id, caption)


# -- validation --------------------------------------------------------------------------


def clean_caption(caption: Any) -> str:
    """Whitespace-normalised caption text ("" when there is none)."""
    return " ".join(caption.split()) if isinstance(caption, str) else ""


def validate_sample(sample: RawSample, limits: IngestLimits) -> tuple[str | None, str | None]:
    """(reject reason, detail), or (None, None) when the sample is usable."""
    if sample.error is not None:
        return sample.error, sample.detail
    caption = clean_caption(sample.caption)
    if not caption:
        return "empty_caption", None
    if len(caption) > limits.max_caption_chars:
        return "caption_too_long", f"{len(caption)} > {limits.max_caption_chars} chars"
    if len(sample.image) > limits.max_image_bytes:
        return "image_too_large", f"{len(sample.image)} > {limits.max_image_bytes} bytes"
    return check_image(sample.image, limits)


def check_image(data: bytes, limits: IngestLimits) -> tuple[str | None, str | None]:
    """Decode fully (``verify`` misses truncation, ``load`` does not) and check size and format."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            width, height, fmt = image.width, image.height, image.format
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
    ) as err:
        return "corrupt_image", f"{type(err).__name__}: {err}"[:300]
    if fmt not in limits.formats:
        return "unsupported_format", f"{fmt} not in {limits.formats}"
    if min(width, height) < limits.min_image_side:
        return "image_too_small", f"{width}x{height} < {limits.min_image_side}"
    if max(width, height) > limits.max_image_side:
        return "image_too_large", f"{width}x{height} > {limits.max_image_side}"
    return None, None
