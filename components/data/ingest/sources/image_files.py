"""Files a record points to, read only when they stay inside their root, and read so that
a file gone since it was listed is a reject naming it, not the end of the ingest.

COCO, img2dataset ``files`` and Parquet path columns name images by relative path; a
path that climbs out of ``image_root`` ("../../etc/passwd"), or a symlink inside it that
points outside it, is a reject, not a read (``under_root`` resolves links).
"""

from __future__ import annotations

from components.data.ingest.base import RawSample
from components.platform.storage import read_bytes, under_root


def file_reject(path: str, err: OSError) -> tuple[str, str]:
    """(reason, detail) for a file that could not be read: missing (never there, or deleted
    after it was listed) or unreadable."""
    text = str(err)
    missing = isinstance(err, FileNotFoundError) or "not found" in text.lower() or "No such" in text
    if missing:
        return "missing_file", f"{path}: no such file or object"[:300]
    return "unreadable_file", f"{path}: {err}"[:300]


def read_file(
    path: str,
    sample_id: str,
    caption: object,
    group: str | None = None,
    graph: dict | None = None,
) -> RawSample:
    """A sample holding the bytes of ``path``; a missing or unreadable file is a reject."""
    try:
        return RawSample(sample_id, caption, read_bytes(path), group=group, graph=graph)
    except OSError as err:
        return RawSample(sample_id, caption, None, *file_reject(path, err), group, graph)


def load_image(
    root: str,
    relative: str,
    sample_id: str,
    caption: object,
    group: str | None = None,
    graph: dict | None = None,
) -> RawSample:
    """A sample whose image is a file under ``root``; a path outside it is a reject."""
    try:
        path = under_root(root, relative)
    except ValueError as err:
        return RawSample(
            sample_id, caption, None, "path_outside_root", str(err)[:300], group, graph
        )
    return read_file(path, sample_id, caption, group, graph)
