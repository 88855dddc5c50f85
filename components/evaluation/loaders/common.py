"""File reading shared by the public-benchmark loaders; every error names file and key."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from components.evaluation.benchmark import BenchmarkError, BenchmarkFileMissing, ImageRef
from components.platform.storage import under_root


def require_file(path: Path, hint: str) -> Path:
    """``path`` if it is a file, else an error saying what the file is and where it comes from."""
    if not path.is_file():
        raise BenchmarkFileMissing(f"{path} does not exist ({hint})")
    return path


def require_dir(path: Path, hint: str) -> Path:
    """``path`` if it is a directory, else an error saying what belongs there."""
    if not path.is_dir():
        raise BenchmarkFileMissing(f"image directory {path} does not exist ({hint})")
    return path


class _DuplicateKey(ValueError):
    """A JSON object that names one key twice (json keeps the last one silently)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def read_json(path: Path, hint: str) -> Any:
    """Parsed JSON of ``path``; missing or malformed files, and objects that repeat a key
    (SugarCrepe keys items by id: a repeated id would drop an item unseen), name themselves."""
    text = require_file(path, hint).read_text(encoding="utf-8")
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as err:
        raise BenchmarkError(
            f"{path} repeats the key {str(err)!r}: each key must be unique"
        ) from err
    except json.JSONDecodeError as err:
        raise BenchmarkError(f"{path} is not valid JSON: {err}") from err


def read_jsonl(path: Path, hint: str) -> list[dict[str, Any]]:
    """One dict per non-empty line; a bad line is reported with its line number."""
    records = []
    lines = require_file(path, hint).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise BenchmarkError(f"{path}:{number} is not valid JSON: {err}") from err
        if not isinstance(record, dict):
            raise BenchmarkError(f"{path}:{number} must be a JSON object")
        records.append(record)
    return records


def read_csv(path: Path, required: Sequence[str], hint: str) -> list[dict[str, str]]:
    """Rows of a headed CSV, after checking that the ``required`` columns exist."""
    with require_file(path, hint).open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        absent = [name for name in required if name not in header]
        if absent:
            raise BenchmarkError(f"{path} lacks column(s) {absent}; its header is {header}")
        return list(reader)


def get_field(record: Any, key: str | int, source: Path, where: str) -> Any:
    """``record[key]`` or an error naming the file, the record and the key."""
    try:
        return record[key]
    except (KeyError, IndexError, TypeError):
        raise BenchmarkError(f"{source}: {where} has no field {key!r}") from None


def get_text(record: Any, key: str | int, source: Path, where: str) -> str:
    """A non-empty caption field; empty captions are format errors, not silent skips."""
    value = get_field(record, key, source, where)
    if not isinstance(value, str) or not value.strip():
        raise BenchmarkError(f"{source}: {where} field {key!r} must be a non-empty string")
    return value


def image_ref(
    image_dir: Path, name: str, bbox: tuple[float, float, float, float] | None = None
) -> ImageRef:
    """The image ``name`` inside ``image_dir``; a name that leaves it (absolute, ``../``, or
    a symlink resolving outside it) is kept as a refused reference: the item is a counted
    ``path_outside_root`` skip at scoring and the file is never opened."""
    try:
        under_root(str(image_dir), name)
    except ValueError as err:
        return ImageRef(image_dir / name, bbox, refused=str(err))
    return ImageRef(image_dir / name, bbox)


def rebase(raw_path: str, image_dir: Path) -> str:
    """Image name under ``image_dir``: as given if it names a file inside it, else its
    basename (for `image_ref`).

    Released annotation files embed their authors' directories (WhatsUp's ``data/...``,
    NegBench's absolute paths), so only the file name is reliable; a path as given is
    never followed out of ``image_dir``.
    """
    try:
        if Path(under_root(str(image_dir), raw_path)).is_file():
            return raw_path
    except ValueError:
        pass  # outside image_dir as written: its basename inside it is what is looked up
    return Path(raw_path.replace("\\", "/")).name
