"""The Ray Data stage that decodes images before the Train worker sees them.

PNG decoding and open_clip's transform used to run in the worker's ``collate``, on the core
that also runs the training step, so every step waited for them (14-44% of a step, issue 16).
As a ``map_batches`` stage they run in Ray Data's task processes, streamed ahead of the
worker, which receives ready float32 pixels. ``iter_batches`` converts every column to
numpy, so the other columns travel as object arrays beside the pixels: strings as they
are, nested ones (scene graphs, negatives) as JSON text, decoded back in ``batch_rows`` (a
struct column would otherwise arrive as nested numpy arrays).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from components.models.batching import decode_image

IMAGE_COLUMN = "image"
PIXELS_COLUMN = "pixels"
DECODE_BATCH_ROWS = 64  # big enough to amortise a task, small enough to stream


def is_nested(field: pa.Field) -> bool:
    return pa.types.is_nested(field.type)


def nested_columns(schema) -> list[str]:
    """Columns the stage turns into JSON text (structs and lists), from a Ray/Arrow schema."""
    types = dict(zip(schema.names, schema.types, strict=True))
    return [
        name
        for name, kind in types.items()
        if isinstance(kind, pa.DataType) and pa.types.is_nested(kind)
    ]


def decode_batch(table: pa.Table, transform: Callable[[Any], torch.Tensor]) -> dict[str, Any]:
    """Arrow rows with image bytes -> {"pixels": (B, 3, H, W) float32, other columns}."""
    images = table.column(IMAGE_COLUMN).to_pylist()
    pixels = torch.stack([transform(decode_image(image)) for image in images]).numpy()
    out: dict[str, Any] = {PIXELS_COLUMN: pixels}
    for field in table.schema:
        if field.name == IMAGE_COLUMN:
            continue
        values = table.column(field.name).to_pylist()
        if is_nested(field):
            values = [None if v is None else json.dumps(v, separators=(",", ":")) for v in values]
        out[field.name] = np.array(values, dtype=object)
    return out


def with_decoded_images(dataset, transform: Callable[[Any], torch.Tensor]):
    """``dataset`` (rows with an ``image`` column) -> rows with ``pixels`` instead."""
    return dataset.map_batches(
        decode_batch,
        fn_kwargs={"transform": transform},
        batch_format="pyarrow",
        batch_size=DECODE_BATCH_ROWS,
    )


def batch_rows(batch: dict[str, np.ndarray], json_columns: Sequence[str] = ()) -> list[dict]:
    """A numpy column batch -> the row dicts a model's ``collate`` takes, JSON decoded."""
    columns = list(batch)
    size = len(batch[columns[0]]) if columns else 0
    rows = [{name: batch[name][i] for name in columns} for i in range(size)]
    for name in set(json_columns) & set(columns):
        for row in rows:
            row[name] = None if row[name] is None else json.loads(row[name])
    return rows
