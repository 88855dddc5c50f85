"""Hard-negative suites from our own shards: positive caption vs one negative per item.

Suite ``swap_att`` holds every (image, caption, swap_att negative) of a split, and so on
for each negative kind; ``negation`` contrasts "and no X" (X absent) with "and no Y"
(Y present). Accuracy is the share of items whose positive scores strictly higher.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from components.data.shards import read_shards
from components.evaluation.benchmark import Benchmark, BenchmarkItem
from components.platform.storage import basename

SUITES = ("swap_att", "swap_obj", "replace_att", "swap_rel", "replace_rel", "negation")


def synthetic_suites(
    split_dir: str | Path, suites: tuple[str, ...] | list[str] = SUITES, limit: int | None = None
) -> dict[str, Benchmark]:
    """One Benchmark per negative kind from a split directory of shards."""
    unknown = set(suites) - set(SUITES)
    if unknown:
        raise ValueError(f"unknown synthetic suites {sorted(unknown)}; known: {SUITES}")
    table = read_shards(split_dir, columns=["id", "image", "caption", "negatives"])
    items: dict[str, list[BenchmarkItem]] = {suite: [] for suite in suites}
    for row in table.to_pylist():
        image = None
        for negative in row["negatives"] or []:  # own data (build_shards) has none
            kind = negative["kind"]
            if kind not in items or (limit and len(items[kind]) >= limit):
                continue
            image = image or Image.open(io.BytesIO(row["image"])).convert("RGB")
            positive = negative["positive_caption"] or row["caption"]
            items[kind].append(
                BenchmarkItem(
                    f"{row['id']}/{kind}", (image,), (positive, negative["caption"]), (0,), kind
                )
            )
    name = basename(split_dir)  # a local folder or a URI (s3://bucket/shards/test)
    return {suite: Benchmark(f"{name}/{suite}", tuple(found)) for suite, found in items.items()}
