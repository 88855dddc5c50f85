"""The Arrow schema of one shard row (docs/architecture.md, Record), shared by every writer and reader.

Synthetic rows fill every column; ingested real data leaves the world-only columns
(objects, mask, codes) null. ``graph`` is null until the parse stage has run.
"""

from __future__ import annotations

import pyarrow as pa

from components.parsing.scene_graph import SCENE_GRAPH_TYPE

OBJECT_TYPE = pa.struct(
    [
        ("object_index", pa.int32()),
        ("values", pa.list_(pa.string())),
        ("bbox", pa.list_(pa.float32(), 4)),  # x0, y0, x1, y1 as image fractions
        ("depth", pa.float32()),  # 0 nearest
    ]
)
NEGATIVE_TYPE = pa.struct(
    [
        ("kind", pa.string()),
        ("caption", pa.string()),
        ("graph", SCENE_GRAPH_TYPE),
        ("image", pa.binary()),  # counterfactual image the negative is true of, or null
        # The caption this negative is contrasted with, when it is not the row's caption
        # (negation pairs "and no X" (true) with "and no Y" (false)); null otherwise.
        ("positive_caption", pa.string()),
        ("positive_graph", SCENE_GRAPH_TYPE),
    ]
)
RECORD_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("image", pa.binary()),  # PNG or JPEG bytes
        ("caption", pa.string()),
        ("graph", SCENE_GRAPH_TYPE),
        ("negatives", pa.list_(NEGATIVE_TYPE)),
        ("objects", pa.list_(OBJECT_TYPE)),
        ("mask", pa.binary()),  # PNG, pixel = object index + 1, 0 background
        ("feature_code", pa.list_(pa.uint8())),
        ("object_code", pa.list_(pa.uint8())),
        ("world", pa.string()),
        ("split", pa.string()),
    ]
)
REQUIRED_COLUMNS = ("id", "image", "caption")
