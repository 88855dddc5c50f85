"""Parquet sources: img2dataset ``parquet`` output, HF-datasets exports, or any table.

The image column may hold encoded bytes, a path relative to the image root, or HF
``datasets``' ``struct<bytes: binary, path: string>`` (bytes when present, else the
path). It is found by name when ``image_column`` is empty (image, jpg, png, webp, jpeg);
the id column likewise (id, key). Without an id column a row's id is the file stem plus
a hash of its image and caption, so it does not depend on how the file is cut into
blocks, and a repeated (image, caption) pair is caught as a duplicate.

A file whose footer or schema cannot be read is one ``unreadable_parquet`` (or
``bad_parquet_schema``) reject naming it; the other files are read as usual.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from components.data.ingest.base import RawSample, SourceSpec, Unit
from components.data.ingest.sources.image_files import file_reject, load_image
from components.platform.storage import (
    expand_paths,
    filesystem_and_path,
    parent,
)

SUFFIXES = (".parquet",)  # a source folder's files that are units
IMAGE_COLUMNS = ("image", "jpg", "png", "webp", "jpeg")
ID_COLUMNS = ("id", "key")


@dataclass(frozen=True)
class Columns:
    """The columns of one file this source reads (None: that column is absent)."""

    image: str
    caption: str
    id: str | None

    def names(self) -> list[str]:
        return [c for c in (self.image, self.caption, self.id) if c]


def list_units(spec: SourceSpec, rows_per_unit: int) -> list[Unit]:
    return [Unit(i, p) for i, p in enumerate(expand_paths(spec.path, SUFFIXES))]


def _pick(wanted: str, candidates: tuple[str, ...], names: list[str]) -> str | None:
    if wanted:
        return wanted if wanted in names else None
    return next((c for c in candidates if c in names), None)


def inspect_file(spec: SourceSpec, path: str) -> tuple[Columns | None, RawSample | None]:
    """(columns to read, None), or (None, a reject naming the file) for a file that
    cannot be read (truncated: no footer) or lacks the image or caption column."""
    stem = posixpath.basename(path).rsplit(".", 1)[0]
    fs, inner = filesystem_and_path(path)
    try:
        schema = pq.read_schema(fs.open_input_file(inner))
    except FileNotFoundError as err:  # deleted since it was listed
        return None, RawSample(f"{stem}/<file>", None, None, *file_reject(path, err))
    except (pa.ArrowInvalid, OSError) as err:
        return None, RawSample(
            f"{stem}/<file>", None, None, "unreadable_parquet", f"{path}: {err}"[:300]
        )
    names = schema.names
    image = _pick(spec.image_column, IMAGE_COLUMNS, names)
    caption = spec.caption_column if spec.caption_column in names else None
    if image is None or caption is None:
        missing = "image" if image is None else f"caption ({spec.caption_column!r})"
        detail = f"{path}: no {missing} column (columns: {names})"
        return None, RawSample(f"{stem}/<file>", None, None, "bad_parquet_schema", detail[:300])
    return Columns(image, caption, _pick(spec.id_column, ID_COLUMNS, names)), None


def read_unit(spec: SourceSpec, unit: Unit) -> Iterator[RawSample]:
    columns, reject = inspect_file(spec, unit.path)
    if reject is not None:
        yield reject
        return
    fs, inner = filesystem_and_path(unit.path)
    try:
        parquet = pq.ParquetFile(fs.open_input_file(inner))
        for batch in parquet.iter_batches(batch_size=256, columns=columns.names()):
            yield from table_samples(pa.Table.from_batches([batch]), spec, columns, unit.path)
    except (pa.ArrowInvalid, OSError) as err:
        stem = posixpath.basename(unit.path).rsplit(".", 1)[0]
        yield RawSample(
            f"{stem}/<file>", None, None, "unreadable_parquet", f"{unit.path}: {err}"[:300]
        )


def _row_id(stem: str, image: object, caption: object) -> str:
    digest = hashlib.sha1()
    for value in (image, caption):
        digest.update(
            value if isinstance(value, bytes) else repr(value).encode("utf-8", "surrogatepass")
        )
    return f"{stem}-{digest.hexdigest()[:16]}"


def table_samples(
    table: pa.Table, spec: SourceSpec, columns: Columns, path: str
) -> Iterator[RawSample]:
    """Raw samples of one batch of a Parquet file (shared by the Ray and in-process paths)."""
    stem = posixpath.basename(path).rsplit(".", 1)[0]
    root = spec.image_root or parent(path)
    images = table.column(columns.image).to_pylist()
    captions = table.column(columns.caption).to_pylist()
    ids = table.column(columns.id).to_pylist() if columns.id else [None] * len(images)
    for image, caption, sample_id in zip(images, captions, ids, strict=True):
        if isinstance(caption, str):
            caption = caption.encode("utf-8", "surrogatepass")
        if columns.id is None:
            sample_id = _row_id(stem, image, caption)
        elif sample_id is None or str(sample_id) == "":
            yield RawSample(
                f"{stem}-<no id>", caption, None, "missing_id", f"{path}: null {columns.id}"
            )
            continue
        sample_id = str(sample_id)
        if isinstance(image, dict):  # HF datasets Image feature: struct<bytes, path>
            image = image.get("bytes") or image.get("path")
        if image is None:
            yield RawSample(sample_id, caption, None, "missing_image", columns.image)
        elif isinstance(image, str):
            yield load_image(root, image, sample_id, caption)
        else:
            yield RawSample(sample_id, caption, image)
