"""Balanced ColorShape: the synthetic world of "Formalizing the Binding Problem" (A2).

8 colours x 8 shapes (K = 64 conjunctions, index c*8 + s); a scene picks 6 colours and
6 shapes (its feature code F), then 18 distinct conjunctions that use all of them. Splits
are by F code, ranked by a sha1 digest, so train/val/test share no F (hence no O) codes.
"""

from __future__ import annotations

import hashlib
import itertools
from functools import cached_property
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from components.data.concepts import ConceptSpace
from components.data.worlds.base import PlacedObject, Scene, SplitSpec, World
from components.data.worlds.colorshape_entropy import (
    conditional_object_entropy,
    split_entropies,
)

PALETTE = {
    "red": (220, 20, 60),
    "blue": (30, 144, 255),
    "green": (34, 139, 34),
    "yellow": (255, 215, 0),
    "purple": (138, 43, 226),
    "orange": (255, 140, 0),
    "cyan": (0, 206, 209),
    "gray": (128, 128, 128),
}
CANVAS = 256
BOX = 16
MARGIN = 4


class ColorShapeWorld(World):
    """Scenes of 18 flat shapes; O is uniform given F by rejection sampling."""

    name_concept = "shape"
    attribute_concepts = ("color",)

    def __init__(self, spec: dict[str, Any]):
        super().__init__(spec)
        self.space = ConceptSpace.from_mapping(spec["concepts"])
        if self.space.names != ("color", "shape"):
            raise ValueError(f"world {self.name}: concepts must be color then shape")
        self.colors_per_scene = int(spec.get("colors_per_scene", 6))
        self.shapes_per_scene = int(spec.get("shapes_per_scene", 6))
        self.objects_per_scene = int(spec.get("objects_per_scene", 18))
        self.split_counts = dict(spec.get("split_counts", {"train": 522, "val": 131, "test": 131}))
        self.split_salt = spec.get("split_salt", "balancedcolorshape_fsplit_v1")
        total = sum(self.split_counts.values())
        if total != len(self.all_feature_codes):
            raise ValueError(
                f"world {self.name}: split_counts sum to {total}, but there are "
                f"{len(self.all_feature_codes)} feature codes"
            )

    def split_specs(self) -> list[SplitSpec]:
        fractions = self.spec.get("splits", {"train": 0.8, "val": 0.1, "test": 0.1})
        return [SplitSpec(name, float(f), "all") for name, f in fractions.items()]

    # -- feature codes and the sha1 split -------------------------------------------
    @cached_property
    def all_feature_codes(self) -> list[str]:
        """Every F as its bit string (colour bits then shape bits)."""
        n_c, n_s = self.space.sizes
        codes = []
        for colors in itertools.combinations(range(n_c), self.colors_per_scene):
            for shapes in itertools.combinations(range(n_s), self.shapes_per_scene):
                bits = ["0"] * (n_c + n_s)
                for c in colors:
                    bits[c] = "1"
                for s in shapes:
                    bits[n_c + s] = "1"
                codes.append("".join(bits))
        return codes

    @cached_property
    def feature_codes_by_split(self) -> dict[str, list[str]]:
        """Rank F codes by sha1(salt|bits), ties by bits; cut into consecutive blocks."""
        ranked = sorted(
            self.all_feature_codes,
            key=lambda bits: (hashlib.sha1(f"{self.split_salt}|{bits}".encode()).hexdigest(), bits),
        )
        splits, start = {}, 0
        for name, count in self.split_counts.items():
            splits[name] = ranked[start : start + count]
            start += count
        return splits

    def entropies(self, split: str) -> dict[str, float]:
        """Exact H(F), H(O|F), H(O) in bits for one split."""
        h_o_f = conditional_object_entropy(
            self.colors_per_scene, self.shapes_per_scene, self.objects_per_scene
        )
        return split_entropies(len(self.feature_codes_by_split[split]), h_o_f)

    def card_extras(self, split_sizes: dict[str, int]) -> dict[str, Any]:
        return {
            "entropies_bits": {split: self.entropies(split) for split in split_sizes},
            "feature_codes_per_split": {k: len(v) for k, v in self.feature_codes_by_split.items()},
            "split_by": "feature_code (sha1 ranking)",
        }

    # -- sampling -------------------------------------------------------------------
    def sample_objects(self, rng: np.random.Generator, feature_bits: str) -> list[int]:
        """18 distinct conjunctions using every selected colour and shape (rejection)."""
        n_c, n_s = self.space.sizes
        colors = [c for c in range(n_c) if feature_bits[c] == "1"]
        shapes = [s for s in range(n_s) if feature_bits[n_c + s] == "1"]
        grid = [c * n_s + s for c in colors for s in shapes]
        for _ in range(1000):
            chosen = sorted(int(x) for x in rng.choice(grid, self.objects_per_scene, replace=False))
            if {k // n_s for k in chosen} == set(colors) and {k % n_s for k in chosen} == set(
                shapes
            ):
                return chosen
        raise RuntimeError(f"world {self.name}: rejection sampling failed for F={feature_bits}")

    def sample_scene(self, rng: np.random.Generator, split: str, allowed: frozenset[int]) -> Scene:
        codes = self.feature_codes_by_split.get(split)
        if not codes:
            raise ValueError(f"world {self.name} has no split {split!r}")
        objects = self.sample_objects(rng, codes[int(rng.integers(len(codes)))])
        corners = self._place_boxes(rng, len(objects))
        placed = tuple(
            PlacedObject(
                k,
                self.values_of(k),
                ((x + BOX / 2) / CANVAS, (y + BOX / 2) / CANVAS),
                0.0,
                (x / CANVAS, y / CANVAS, (x + BOX) / CANVAS, (y + BOX) / CANVAS),
            )
            for k, (x, y) in zip(objects, corners, strict=True)
        )
        return Scene(placed)

    def _place_boxes(self, rng: np.random.Generator, n: int) -> list[tuple[int, int]]:
        """Non-overlapping 16 px boxes (touching allowed); position says nothing of identity."""
        corners: list[tuple[int, int]] = []
        high = CANVAS - BOX - MARGIN
        for _ in range(2000):
            if len(corners) == n:
                break
            x, y = (int(v) for v in rng.integers(MARGIN, high + 1, size=2))
            if all(
                x >= ox + BOX or ox >= x + BOX or y >= oy + BOX or oy >= y + BOX
                for ox, oy in corners
            ):
                corners.append((x, y))
        if len(corners) < n:
            raise RuntimeError(f"world {self.name}: could not place {n} boxes")
        return corners

    # -- rendering ------------------------------------------------------------------
    def render(self, scene: Scene, image_size: int) -> tuple[np.ndarray, np.ndarray, Scene]:
        canvas = Image.new("RGB", (CANVAS, CANVAS), (255, 255, 255))
        mask = Image.new("L", (CANVAS, CANVAS), 0)
        draw, mask_draw = ImageDraw.Draw(canvas), ImageDraw.Draw(mask)
        for i, obj in enumerate(scene.objects):
            color, shape = obj.values
            x0, y0 = round(obj.bbox[0] * CANVAS), round(obj.bbox[1] * CANVAS)
            for target, fill in ((draw, PALETTE[color]), (mask_draw, i + 1)):
                _draw_shape(target, shape, x0, y0, fill)
        if image_size != CANVAS:
            canvas = canvas.resize((image_size, image_size), Image.BILINEAR)
            mask = mask.resize((image_size, image_size), Image.NEAREST)
        return np.asarray(canvas), np.asarray(mask), scene


def _regular_polygon(cx: float, cy: float, radius: float, sides: int) -> list[tuple[float, float]]:
    angles = -np.pi / 2 + 2 * np.pi * np.arange(sides) / sides  # first vertex points up
    return [(cx + radius * np.cos(a), cy + radius * np.sin(a)) for a in angles]


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, x0: int, y0: int, fill) -> None:
    """Shape geometry as in the reference: 16 px box, circumradius 8, no anti-aliasing."""
    x1, y1 = x0 + BOX - 1, y0 + BOX - 1
    cx, cy, r = x0 + BOX / 2, y0 + BOX / 2, BOX / 2
    if shape == "circle":
        draw.ellipse([x0, y0, x1, y1], fill=fill)
    elif shape == "square":
        draw.rectangle([x0, y0, x1, y1], fill=fill)
    elif shape in ("triangle", "pentagon", "hexagon"):
        sides = {"triangle": 3, "pentagon": 5, "hexagon": 6}[shape]
        draw.polygon(_regular_polygon(cx, cy, r, sides), fill=fill)
    elif shape == "diamond":
        draw.polygon([(cx, y0), (x1, cy), (cx, y1), (x0, cy)], fill=fill)
    elif shape == "cross":
        half = 2
        draw.rectangle([cx - half, y0, cx + half - 1, y1], fill=fill)
        draw.rectangle([x0, cy - half, x1, cy + half - 1], fill=fill)
    elif shape == "star":
        outer = _regular_polygon(cx, cy, r, 5)
        inner = _regular_polygon(cx, cy, 0.45 * r, 5)
        rot = [
            (
                cx + (px - cx) * np.cos(np.pi / 5) - (py - cy) * np.sin(np.pi / 5),
                cy + (px - cx) * np.sin(np.pi / 5) + (py - cy) * np.cos(np.pi / 5),
            )
            for px, py in inner
        ]
        draw.polygon([p for pair in zip(outer, rot, strict=True) for p in pair], fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}")
