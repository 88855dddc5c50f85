"""WebDataset tars (img2dataset's ``webdataset`` output): ``KEY.ext`` members grouped by key.

A tar must end in its two zero end-of-archive blocks: one cut at a 512-byte header
boundary otherwise reads as a complete, shorter archive. Such a tar keeps the samples
it holds in full and adds one ``truncated_tar`` reject naming it.
"""

from __future__ import annotations

import io
import json
import posixpath
import tarfile
from collections.abc import Iterator

from components.data.ingest.base import (
    CAPTION_JSON_KEYS,
    IMAGE_EXTENSIONS,
    RawSample,
    SourceSpec,
    Unit,
)
from components.data.ingest.sources.image_files import file_reject
from components.platform.storage import expand_paths, read_bytes

SUFFIXES = (".tar",)  # a source folder's files that are units
BLOCK = 512


def list_units(spec: SourceSpec, rows_per_unit: int) -> list[Unit]:
    return [Unit(i, p) for i, p in enumerate(expand_paths(spec.path, SUFFIXES))]


def read_unit(spec: SourceSpec, unit: Unit) -> Iterator[RawSample]:
    try:
        data = read_bytes(unit.path)
    except OSError as err:  # deleted since it was listed: one reject naming the tar
        yield RawSample(f"{_stem(unit.path)}/<tar>", None, None, *file_reject(unit.path, err))
        return
    yield from tar_samples(data, unit.path)


def _stem(path: str) -> str:
    return posixpath.basename(path).rsplit(".", 1)[0]


def is_complete(data: bytes) -> bool:
    """True when the archive ends with the end-of-archive marker (two zero blocks)."""
    return len(data) >= 2 * BLOCK and len(data) % BLOCK == 0 and not any(data[-2 * BLOCK :])


def tar_samples(data: bytes, path: str) -> Iterator[RawSample]:
    """Samples of one tar's bytes; a broken or cut tar adds a reject naming ``path``."""
    prefix = _stem(path)
    key, parts = None, {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                name = member.name.rsplit("/", 1)[-1]
                if "." not in name:
                    continue
                directory = member.name[: len(member.name) - len(name)]
                member_key = directory + name.split(".", 1)[0]
                extension = name.split(".", 1)[1].lower()
                if member_key != key:
                    if key is not None:
                        yield wds_sample(f"{prefix}/{key}", parts)
                    key, parts = member_key, {}
                parts[extension] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as err:
        yield RawSample(f"{prefix}/<tar>", None, None, "unreadable_tar", f"{path}: {err}"[:300])
        return  # the sample being read when the tar broke is incomplete: not kept
    if key is not None:
        yield wds_sample(f"{prefix}/{key}", parts)
    if not is_complete(data):
        yield RawSample(
            f"{prefix}/<tar>", None, None, "truncated_tar",
            f"{path}: {len(data)} bytes, no end-of-archive blocks",
        )  # fmt: skip


def wds_sample(sample_id: str, parts: dict[str, bytes]) -> RawSample:
    """One sample from its members: caption from ``txt`` (bytes, checked later) or ``json``."""
    caption: str | bytes | None = None
    if "txt" in parts:
        caption = parts["txt"]
    elif "json" in parts:
        try:
            meta = json.loads(parts["json"].decode("utf-8"))
        except UnicodeDecodeError as err:
            return RawSample(sample_id, None, None, "invalid_utf8", f"json: {err}"[:200])
        except json.JSONDecodeError as err:
            return RawSample(sample_id, None, None, "bad_json", str(err))
        if isinstance(meta, dict):
            caption = next(
                (meta[k] for k in CAPTION_JSON_KEYS if isinstance(meta.get(k), str)), None
            )
    image = next((parts[e] for e in IMAGE_EXTENSIONS if e in parts), None)
    if image is None:
        return RawSample(sample_id, caption, None, "missing_image", f"extensions {sorted(parts)}")
    return RawSample(sample_id, caption, image)
