"""A CLEVR-like world rendered in 2.5D with PIL: shaded cubes, spheres and cylinders.

Objects float at screen positions (x, y) with a depth that sets their scale and the
painter's order, so left/right, above/below and in front/behind all come from geometry
and occlusion is controlled by one number (the largest share of an object's box that
nearer objects may cover).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from components.data.concepts import ConceptSpace
from components.data.worlds.base import PlacedObject, Scene, SplitSpec, World

CLEVR_RGB = {
    "gray": (87, 87, 87),
    "red": (173, 35, 35),
    "blue": (42, 75, 215),
    "green": (29, 105, 20),
    "brown": (129, 74, 25),
    "purple": (129, 38, 192),
    "cyan": (41, 208, 208),
    "yellow": (255, 238, 51),
}
SIZE_RADIUS = {"large": 0.13, "small": 0.085}
AXIS_OF = {
    "left of": ("x", -1),
    "right of": ("x", 1),
    "above": ("y", -1),
    "below": ("y", 1),
    "in front of": ("depth", -1),
    "behind": ("depth", 1),
}


def _shade(rgb: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(c * factor, 0, 255)) for c in rgb)  # type: ignore[return-value]


class ClevrWorld(World):
    """CLEVR concepts (colour, shape, size, material) with geometric relations."""

    def __init__(self, spec: dict[str, Any]):
        super().__init__(spec)
        self.space = ConceptSpace.from_mapping(spec["concepts"])
        self.name_concept = spec.get("name_concept", "shape")
        self.attribute_concepts = tuple(spec.get("attribute_concepts", ()))
        self.min_objects = int(spec.get("min_objects", 2))
        self.max_objects = int(spec.get("max_objects", 6))
        self.max_occlusion = float(spec.get("max_occlusion", 0.3))
        self.relation_margin = float(spec.get("relation_margin", 0.06))
        self.relations = tuple(spec.get("relations", AXIS_OF))
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError(f"world {self.name}: need 1 <= min_objects <= max_objects")
        unknown = set(self.relations) - set(AXIS_OF)
        if unknown:
            raise ValueError(f"world {self.name}: unknown relations {sorted(unknown)}")
        for concept, known in (("color", CLEVR_RGB), ("shape", _SHAPES)):
            if concept in self.space.names:
                unknown = set(spec["concepts"][concept]) - set(known)
                if unknown:
                    raise ValueError(
                        f"world {self.name}: unknown {concept} values {sorted(unknown)}; "
                        f"known: {sorted(known)}"
                    )

    def split_specs(self) -> list[SplitSpec]:
        fractions = self.spec.get(
            "splits",
            {"train": 0.7, "val": 0.05, "test_seen": 0.1, "test_heldout": 0.1, "val_heldout": 0.05},
        )
        # val_heldout chooses models on held-out objects so test_heldout is read once; the
        # two draw disjoint scenes (own random streams) and, in a world with enough held-out
        # objects, disjoint halves of them (synthetic.allowed_objects).
        objects = {
            "train": "seen",
            "val": "seen",
            "test_seen": "seen",
            "test_heldout": "heldout_test",
            "val_heldout": "heldout_val",
        }
        return [
            SplitSpec(name, float(f), objects.get(name, "seen")) for name, f in fractions.items()
        ]

    # -- layout ---------------------------------------------------------------------
    def _radius(self, values: tuple[str, ...], depth: float) -> float:
        size = values[self.concept_position("size")] if "size" in self.space.names else "large"
        return SIZE_RADIUS[size] * (1.0 - 0.35 * depth)

    def _box(self, values: tuple[str, ...], cx: float, cy: float, depth: float):
        r = self._radius(values, depth)
        return (cx - r, cy - r, cx + r, cy + r)

    def sample_scene(self, rng: np.random.Generator, split: str, allowed: frozenset[int]) -> Scene:
        if not allowed:
            raise ValueError(f"world {self.name}: split {split!r} has no objects to draw from")
        candidates = np.array(sorted(allowed))
        n = int(rng.integers(self.min_objects, self.max_objects + 1))
        n = min(n, len(candidates))
        for _ in range(200):
            chosen = rng.choice(candidates, size=n, replace=False)
            placed: list[PlacedObject] = []
            for index in chosen:
                values = self.values_of(int(index))
                for _ in range(100):
                    cx, cy = rng.uniform(0.18, 0.82, size=2)
                    depth = float(rng.uniform(0.0, 1.0))
                    obj = PlacedObject(
                        int(index),
                        values,
                        (float(cx), float(cy)),
                        depth,
                        self._box(values, cx, cy, depth),
                    )
                    if self._fits(obj, placed):
                        placed.append(obj)
                        break
                else:
                    break
            if len(placed) == n:
                return Scene(tuple(placed))
        raise RuntimeError(f"world {self.name}: could not place {n} objects; lower max_occlusion")

    def _fits(self, new: PlacedObject, placed: list[PlacedObject]) -> bool:
        """Occlusion bound both ways, and a relation must hold with every other object."""
        for other in placed:
            if not self.relations_between(new, other):
                return False
            near, far = (new, other) if new.depth < other.depth else (other, new)
            if _overlap(near.bbox, far.bbox) > self.max_occlusion * _area(far.bbox):
                return False
        return True

    def relations_between(self, a: PlacedObject, b: PlacedObject) -> list[str]:
        delta = {
            "x": a.center[0] - b.center[0],
            "y": a.center[1] - b.center[1],
            "depth": a.depth - b.depth,
        }
        margins = {"x": self.relation_margin, "y": self.relation_margin, "depth": 0.15}
        return [
            predicate
            for predicate in self.relations
            for axis, sign in [AXIS_OF[predicate]]
            if sign * delta[axis] > margins[axis]
        ]

    def mirrored(self, scene: Scene, predicate: str) -> Scene | None:
        axis, _ = AXIS_OF[predicate]
        flipped = []
        for obj in scene.objects:
            cx, cy = obj.center
            depth = obj.depth
            if axis == "x":
                cx = 1.0 - cx
            elif axis == "y":
                cy = 1.0 - cy
            else:
                depth = 1.0 - depth
            flipped.append(
                replace(
                    obj, center=(cx, cy), depth=depth, bbox=self._box(obj.values, cx, cy, depth)
                )
            )
        return Scene(tuple(flipped))

    # -- rendering ------------------------------------------------------------------
    def render(self, scene: Scene, image_size: int) -> tuple[np.ndarray, np.ndarray, Scene]:
        s = image_size
        floor = np.linspace(150, 190, s, dtype=np.float32)[:, None].repeat(s, axis=1)
        canvas = Image.fromarray(np.stack([floor] * 3, axis=-1).astype(np.uint8))
        mask = Image.new("L", (s, s), 0)
        draw, mask_draw = ImageDraw.Draw(canvas), ImageDraw.Draw(mask)
        order = sorted(range(len(scene.objects)), key=lambda i: -scene.objects[i].depth)
        boxes: dict[int, tuple[float, float, float, float]] = {}
        for i in order:  # far to near: nearer objects paint over farther ones
            obj = scene.objects[i]
            named = dict(zip(self.space.names, obj.values, strict=True))
            rgb = CLEVR_RGB[named.get("color", "gray")]
            metal = named.get("material") == "metal"
            r = self._radius(obj.values, obj.depth) * s
            cx, cy = obj.center[0] * s, obj.center[1] * s
            polygons = _SHAPES[named.get("shape", "sphere")](draw, cx, cy, r, rgb, metal)
            for poly in polygons:
                mask_draw.polygon(poly, fill=i + 1)
            xs = [p[0] for poly in polygons for p in poly]
            ys = [p[1] for poly in polygons for p in poly]
            boxes[i] = (min(xs) / s, min(ys) / s, max(xs) / s, max(ys) / s)
        placed = tuple(
            replace(obj, bbox=tuple(float(np.clip(v, 0, 1)) for v in boxes[i]))
            for i, obj in enumerate(scene.objects)
        )
        return np.asarray(canvas), np.asarray(mask), Scene(placed)


def _area(box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def _overlap(a, b) -> float:
    return _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))


def _ellipse_polygon(cx, cy, rx, ry, n=24):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return [(float(cx + rx * np.cos(a)), float(cy + ry * np.sin(a))) for a in t]


def _sphere(draw, cx, cy, r, rgb, metal):
    """Concentric discs shifted toward the light give Lambert-like shading."""
    outline = _ellipse_polygon(cx, cy, r, r)
    steps = 6
    for k in range(steps):
        frac = 1.0 - k / steps
        shift = (1.0 - frac) * 0.35 * r
        draw.polygon(
            _ellipse_polygon(cx - shift, cy - shift, r * frac, r * frac),
            fill=_shade(rgb, 0.55 + 0.6 * k / steps),
        )
    if metal:
        hl = 0.22 * r
        draw.polygon(_ellipse_polygon(cx - 0.35 * r, cy - 0.35 * r, hl, hl), fill=(245, 245, 245))
    return [outline]


def _cube(draw, cx, cy, r, rgb, metal):
    """Front face, lighter top face and darker side face in oblique projection."""
    h = 0.8 * r
    d = 0.35 * r
    front = [(cx - h, cy - h + d), (cx + h - d, cy - h + d), (cx + h - d, cy + h), (cx - h, cy + h)]
    top = [(cx - h, cy - h + d), (cx - h + d, cy - h), (cx + h, cy - h), (cx + h - d, cy - h + d)]
    side = [(cx + h - d, cy - h + d), (cx + h, cy - h), (cx + h, cy + h - d), (cx + h - d, cy + h)]
    draw.polygon(front, fill=_shade(rgb, 0.95))
    draw.polygon(top, fill=_shade(rgb, 1.25))
    draw.polygon(side, fill=_shade(rgb, 0.6))
    if metal:
        glint = [
            (cx - h + 2 * d, cy - h + d),
            (cx - h + 3 * d, cy - h + d),
            (cx - h + d, cy + h),
            (cx - h, cy + h),
        ]
        draw.polygon(glint, fill=_shade(rgb, 1.8))
    return [front, top, side]


def _cylinder(draw, cx, cy, r, rgb, metal):
    """Vertical bands shade the body; the top ellipse is the lit face."""
    w, h, e = 0.75 * r, 0.9 * r, 0.3 * r
    body = [(cx - w, cy - h + e), (cx + w, cy - h + e), (cx + w, cy + h - e), (cx - w, cy + h - e)]
    bottom = _ellipse_polygon(cx, cy + h - e, w, e)
    draw.polygon(bottom, fill=_shade(rgb, 0.7))
    bands = 6
    for k in range(bands):
        x0 = cx - w + 2 * w * k / bands
        x1 = cx - w + 2 * w * (k + 1) / bands
        factor = 1.0 - 0.45 * abs((k + 0.5) / bands - 0.3)
        if metal and k == 1:
            factor = 1.7
        draw.polygon(
            [(x0, cy - h + e), (x1, cy - h + e), (x1, cy + h - e), (x0, cy + h - e)],
            fill=_shade(rgb, factor),
        )
    top = _ellipse_polygon(cx, cy - h + e, w, e)
    draw.polygon(top, fill=_shade(rgb, 1.25))
    return [body, bottom, top]


def _cone(draw, cx, cy, r, rgb, metal):
    """A lit left flank and a darker right flank over an elliptic base."""
    w, h, e = 0.8 * r, 0.95 * r, 0.25 * r
    base = _ellipse_polygon(cx, cy + h - e, w, e)
    draw.polygon(base, fill=_shade(rgb, 0.7))
    left = [(cx, cy - h), (cx - w, cy + h - e), (cx, cy + h)]
    right = [(cx, cy - h), (cx, cy + h), (cx + w, cy + h - e)]
    draw.polygon(left, fill=_shade(rgb, 1.6 if metal else 1.15))
    draw.polygon(right, fill=_shade(rgb, 0.65))
    return [base, left, right]


def _pyramid(draw, cx, cy, r, rgb, metal):
    """A square pyramid seen edge-on: a tall lit face beside a narrow dark one."""
    w, h = 0.85 * r, 0.9 * r
    apex, split = (cx - 0.15 * r, cy - h), (cx + 0.35 * w, cy + h)
    front = [apex, (cx - w, cy + h), split]
    side = [apex, split, (cx + w, cy + 0.7 * h)]
    draw.polygon(front, fill=_shade(rgb, 1.6 if metal else 1.05))
    draw.polygon(side, fill=_shade(rgb, 0.55))
    return [front, side]


def _torus(draw, cx, cy, r, rgb, metal):
    """A flat ring drawn as annulus segments, so the hole stays see-through."""
    rx, ry, thickness, n = r, 0.6 * r, 0.4, 16
    segments = []
    for k in range(n):
        a0, a1 = 2 * np.pi * k / n, 2 * np.pi * (k + 1) / n
        outer = [(cx + rx * np.cos(a), cy + ry * np.sin(a)) for a in (a0, a1)]
        inner = [
            (cx + (1 - thickness) * rx * np.cos(a), cy + (1 - thickness) * ry * np.sin(a))
            for a in (a1, a0)
        ]
        segment = [(float(x), float(y)) for x, y in outer + inner]
        light = 1.0 - 0.4 * np.sin((a0 + a1) / 2 + np.pi / 4)  # lit from the top left
        draw.polygon(segment, fill=_shade(rgb, light * (1.3 if metal else 1.0)))
        segments.append(segment)
    return segments


_SHAPES = {
    "cube": _cube,
    "sphere": _sphere,
    "cylinder": _cylinder,
    "cone": _cone,
    "torus": _torus,
    "pyramid": _pyramid,
}
SHAPES = tuple(_SHAPES)  # CLEVR's three first; the rest let pixel worlds have up to six
