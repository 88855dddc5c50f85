"""Sources listed on the driver, pixels read in workers: img2dataset ``files`` and COCO.

``files``: img2dataset's ``SSSSS/KEY.jpg`` + ``KEY.txt`` (+ ``KEY.json``); one unit per
folder, one sample per key. ``coco``: a captions JSON (``images`` + ``annotations``), one
sample per annotation, grouped (for the split) by its image; units are chunks of
annotations sorted by id. A record without ``id``/``image_id``/``file_name`` is a
``missing_field`` reject naming the field, not the end of the ingest.

Captions travel as UTF-8 bytes (``surrogatepass``), so a lone surrogate from a JSON
escape reaches validation as an ``invalid_utf8`` reject instead of breaking Arrow.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator
from itertools import groupby
from typing import Any

from components.data.ingest.base import (
    CAPTION_JSON_KEYS,
    IMAGE_EXTENSIONS,
    RawSample,
    SourceSpec,
    Unit,
)
from components.data.ingest.sources.image_files import file_reject, load_image, read_file
from components.platform.storage import expand_paths, parent, read_bytes


def list_units(spec: SourceSpec, rows_per_unit: int) -> list[Unit]:
    if spec.kind == "files":
        return _file_units(spec)
    return chunk_units(spec.path, _coco_items(spec), rows_per_unit)


def chunk_units(path: str, items: list[dict[str, Any]], rows_per_unit: int) -> list[Unit]:
    """Units of ``rows_per_unit`` items each, in the order given."""
    return [
        Unit(i, path, tuple(items[start : start + rows_per_unit]))
        for i, start in enumerate(range(0, len(items), rows_per_unit))
    ]


def as_bytes(text: Any) -> bytes | None:
    return text.encode("utf-8", "surrogatepass") if isinstance(text, str) else None


def _file_units(spec: SourceSpec) -> list[Unit]:
    def folder_and_key(path: str) -> tuple[str, str]:
        folder, name = posixpath.split(path)
        return folder, name.split(".", 1)[0]

    files = expand_paths(spec.path)
    units = []
    for folder, in_folder in groupby(
        sorted(files, key=folder_and_key), lambda p: folder_and_key(p)[0]
    ):
        items = []
        for key, group in groupby(in_folder, lambda p: folder_and_key(p)[1]):
            parts = {
                posixpath.basename(p).split(".", 1)[1].lower(): p
                for p in group
                if "." in posixpath.basename(p)
            }
            image = next((parts[e] for e in IMAGE_EXTENSIONS if e in parts), None)
            if image is None and "txt" not in parts:
                continue  # not a sample: SSSSS_stats.json, SSSSS.parquet beside the folders
            items.append(
                {"id": f"{posixpath.basename(folder)}/{key}", "image": image,
                 "txt": parts.get("txt"), "json": parts.get("json")}
            )  # fmt: skip
        units.append(Unit(len(units), folder, tuple(items)))
    return units


def _coco_items(spec: SourceSpec) -> list[dict[str, Any]]:
    (path,) = expand_paths(spec.path)[:1]
    data = json.loads(read_bytes(path))
    for key in ("images", "annotations"):
        if not isinstance(data, dict) or not isinstance(data.get(key), list):
            raise ValueError(f"{path}: a COCO captions JSON needs a list under {key!r}")
    files = {
        image["id"]: image.get("file_name")
        for image in data["images"]
        if isinstance(image, dict) and "id" in image
    }
    root = spec.image_root or parent(path)
    items = []
    for k, annotation in enumerate(data["annotations"]):
        if not isinstance(annotation, dict):
            items.append(
                {
                    "id": f"coco-annotations[{k}]",
                    "error": "missing_field",
                    "detail": "not an object",
                }
            )
            continue
        missing = [f for f in ("id", "image_id") if annotation.get(f) is None]
        image_id = annotation.get("image_id")
        if not missing and not files.get(image_id):
            missing = [f"file_name of image {image_id}"]
        sample_id = (
            f"coco-{annotation['id']}"
            if annotation.get("id") is not None
            else f"coco-annotations[{k}]"
        )
        item = {
            "id": sample_id,
            "group": f"coco-image-{image_id}",
            "caption": as_bytes(annotation.get("caption")),
        }
        if missing:
            item |= {
                "error": "missing_field",
                "detail": f"annotations[{k}] has no {', '.join(missing)}",
            }
        else:
            item |= {"root": root, "image": files[image_id]}
        items.append(item)
    return sorted(items, key=lambda item: item["id"])


def read_unit(spec: SourceSpec, unit: Unit) -> Iterator[RawSample]:
    for item in unit.items:
        yield load_item(item)


def load_item(item: dict[str, Any]) -> RawSample:
    """Read what a listed item points at (image, caption file) into a raw sample."""
    sample_id, group = item["id"], item.get("group")
    if item.get("error"):
        return RawSample(
            sample_id, item.get("caption"), None, item["error"], item.get("detail"), group
        )
    if "txt" in item:  # img2dataset files
        return _files_sample(item)
    return load_image(
        item["root"], item["image"], sample_id, item.get("caption"), group, item.get("graph")
    )


def _files_sample(item: dict[str, Any]) -> RawSample:
    caption: bytes | str | None = None
    caption_file = item["txt"] or item["json"]
    try:
        if item["txt"]:
            caption = read_bytes(item["txt"])
        elif item["json"]:
            meta = json.loads(read_bytes(item["json"]).decode("utf-8"))
            caption = next(
                (meta[k] for k in CAPTION_JSON_KEYS if isinstance(meta.get(k), str)), None
            )
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        return RawSample(item["id"], None, None, "bad_json", str(err)[:200])
    except OSError as err:  # deleted since the folder was listed
        return RawSample(item["id"], None, None, *file_reject(caption_file, err))
    if item["image"] is None:
        return RawSample(item["id"], caption, None, "missing_image", "no image file for this key")
    return read_file(item["image"], item["id"], caption)
