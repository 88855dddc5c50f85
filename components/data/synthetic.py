"""Synthetic scenes -> shard rows: sample, render, caption, negatives, codes.

A row is a pure function of (world spec, split, seed, coverage, image size, index): its
random stream is seeded by (seed, split number, index), so any shard can be rebuilt alone
and a rerun produces byte-identical rows.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from PIL import Image

from components.data.captions import plan_caption
from components.data.concepts import CoverageSplit, coverage_split, heldout_partition
from components.data.grammar import realise
from components.data.negatives import make_negatives
from components.data.schema import RECORD_SCHEMA
from components.data.worlds import World, get_world
from components.data.worlds.base import Scene


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


@dataclass(frozen=True)
class SyntheticSpec:
    """Everything a row depends on; shipped to Ray tasks as plain data."""

    world: str
    seed: int
    coverage: float
    image_size: int
    world_overrides: tuple[tuple[str, Any], ...] = ()

    def build_world(self) -> World:
        return get_world(self.world, **dict(self.world_overrides))


def allowed_objects(world: World, split_objects: str, coverage: CoverageSplit) -> frozenset[int]:
    """The objects a split's scenes (and its negatives) may contain.

    ``heldout_val`` / ``heldout_test`` are the two halves of the held-out objects when the
    world has at least ``heldout_split_min`` of them (spec key, default 10), else all of them.
    """
    everything = frozenset(range(world.space.num_objects))
    val, test = heldout_partition(coverage, int(world.spec.get("heldout_split_min", 10)))
    return {
        "seen": coverage.seen,
        "heldout": coverage.heldout,
        "heldout_val": val,
        "heldout_test": test,
        "all": everything,
    }[split_objects]


class SceneRowBuilder:
    """Builds rows for one split; a callable so Ray Data can hold one per worker."""

    def __init__(self, spec: SyntheticSpec, split: str):
        self.spec = spec
        self.world = spec.build_world()
        self.split = split
        split_specs = {s.name: (n, s) for n, s in enumerate(self.world.split_specs())}
        if split not in split_specs:
            raise ValueError(f"world {self.world.name} has no split {split!r}")
        self.split_number, split_spec = split_specs[split]
        self.coverage = coverage_split(self.world.space, spec.coverage, spec.seed)
        self.allowed = allowed_objects(self.world, split_spec.objects, self.coverage)
        # Negatives in seen-object splits stay within seen objects; tests may name any.
        everything = frozenset(range(self.world.space.num_objects))
        heldout = split_spec.objects.startswith("heldout")
        self.negative_allowed = everything if heldout else self.allowed

    def row(self, index: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.spec.seed, self.split_number, index])
        scene = self.world.sample_scene(rng, self.split, self.allowed)
        image, mask, scene = self.world.render(scene, self.spec.image_size)
        plan = plan_caption(self.world, scene, rng, self.negative_allowed)
        caption, graph = realise(plan)
        negatives = []
        for negative in make_negatives(self.world, plan, scene, rng, self.negative_allowed):
            neg_caption, neg_graph = realise(negative.plan)
            positive = realise(negative.positive) if negative.positive else (None, None)
            negatives.append(
                {
                    "kind": negative.kind,
                    "caption": neg_caption,
                    "graph": neg_graph.to_dict(),
                    "image": self._render_counterfactual(negative.scene),
                    "positive_caption": positive[0],
                    "positive_graph": positive[1].to_dict() if positive[1] else None,
                }
            )
        indices = [o.object_index for o in scene.objects]
        return {
            "id": f"{self.world.name}-s{self.spec.seed}-{self.split}-{index:07d}",
            "image": png_bytes(image),
            "caption": caption,
            "graph": graph.to_dict(),
            "negatives": negatives,
            "objects": [
                {
                    "object_index": o.object_index,
                    "values": list(o.values),
                    "bbox": list(o.bbox),
                    "depth": o.depth,
                }
                for o in scene.objects
            ],
            "mask": png_bytes(mask),
            "feature_code": self.world.space.feature_code(indices).tolist(),
            "object_code": self.world.space.object_code(indices).tolist(),
            "world": self.world.name,
            "split": self.split,
        }

    def _render_counterfactual(self, scene: Scene | None) -> bytes | None:
        if scene is None:
            return None
        image, _, _ = self.world.render(scene, self.spec.image_size)
        return png_bytes(image)

    def table(self, indices: list[int]) -> pa.Table:
        return pa.Table.from_pylist([self.row(i) for i in indices], schema=RECORD_SCHEMA)
