"""What an ingest checks before Ray starts: its source exists and its ``out=`` can be made.

A missing bucket, wrong keys or a typo in ``source.path`` or ``out=`` would otherwise
surface minutes later, from inside Ray, as a FileNotFoundError or ACCESS_DENIED
traceback. Each check is one line naming the key (``InvalidValue``, exit 2); URIs are
probed with the platform's bounded timeout (``check_path``), so none can hang.
"""

from __future__ import annotations

import os
from pathlib import Path

from components.platform.config import InvalidValue, check, check_path
from components.platform.storage import is_uri, local_path

PATTERN_CHARS = ("{", "*", "?", "[")
FILE_KINDS = ("coco", "visual_genome", "gqa")  # one annotation file, not a folder of units
OWN_DATA = "see docs/own-data.md"


def fixed_prefix(path: str) -> str:
    """The part of a path spec before its first brace or glob component:
    ``s3://b/cc12m/{00000..00099}.tar`` -> ``s3://b/cc12m``; ``path`` itself without one;
    "" when the pattern is in a URI's bucket name (nothing fixed to probe)."""
    parts = path.split("/")
    for index, part in enumerate(parts):
        if any(char in part for char in PATTERN_CHARS):
            if is_uri(path) and index < 3:  # "s3:", "", "{bucket,other}"
                return ""
            return "/".join(parts[:index]) or ("/" if path.startswith("/") else ".")
    return path


def check_source_path(kind: str, path: str) -> None:
    """``source.path`` exists: the file or folder it names, or the folder before its pattern
    (listing every match of a pattern waits for the build)."""
    target = fixed_prefix(path)
    local = local_path(target) if target else None
    if not target or (local is not None and os.path.exists(local)):
        return  # a file or folder (the kind's reader says which it needs), or no fixed part
    if target != path:
        noun = "dir"
    else:
        noun = "file" if kind in FILE_KINDS or os.path.splitext(path)[1] else "dir"
    try:
        check_path("source.path", target, noun)
    except InvalidValue as err:
        where = "" if target == path else f" (the folder before its pattern: {target})"
        raise InvalidValue("source.path", path, f"{err.allowed}{where}; {OWN_DATA}") from None


def check_out(out: str) -> None:
    """``out=`` can be written: a URI's bucket answers (probed with a timeout, so wrong
    keys or a missing bucket are named), a local path's nearest existing parent is a
    writable folder."""
    local = local_path(out)
    if local is None:
        scheme, rest = out.split("://", 1)
        bucket = rest.split("/", 1)[0]
        check(bool(bucket), "out", out, "a URI with a bucket (s3://bucket/folder)")
        try:
            check_path("out", f"{scheme}://{bucket}", "dir")
        except InvalidValue as err:
            raise InvalidValue("out", out, f"{err.allowed} as its bucket") from None
        return
    path = Path(local)
    existing = next(p for p in (path, *path.parents) if p.exists())
    writable = existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)
    check(
        writable, "out", out, f"a folder that can be created ({existing} is not a writable folder)"
    )
