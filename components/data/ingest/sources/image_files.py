"""An image file a record points to, read only when it stays inside its root.

COCO, img2dataset ``files`` and Parquet path columns name images by relative path; a
path that climbs out of ``image_root`` ("../../etc/passwd") is a reject, not a read.
"""

from __future__ import annotations

from components.data.ingest.base import RawSample
from components.platform.storage import read_bytes, under_root


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
    try:
        return RawSample(sample_id, caption, read_bytes(path), group=group, graph=graph)
    except FileNotFoundError:
        return RawSample(sample_id, caption, None, "missing_file", path, group, graph)
    except OSError as err:
        reason = (
            "missing_file"
            if "not found" in str(err).lower() or "No such" in str(err)
            else "unreadable_file"
        )
        return RawSample(sample_id, caption, None, reason, f"{path}: {err}"[:300], group, graph)
