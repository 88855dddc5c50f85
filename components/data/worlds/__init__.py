"""World registry: a world is chosen by name; its spec is a YAML file under datasets/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from components.data.worlds.base import PlacedObject, Scene, SplitSpec, World
from components.data.worlds.clevr import ClevrWorld
from components.data.worlds.colorshape import ColorShapeWorld

WORLD_CLASSES: dict[str, type[World]] = {"clevr": ClevrWorld, "colorshape": ColorShapeWorld}
DATASETS_DIR = Path(__file__).resolve().parents[3] / "datasets"


def load_world_spec(name_or_path: str) -> dict[str, Any]:
    """Read a world spec by registered name (datasets/NAME.yaml) or by file path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = DATASETS_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in DATASETS_DIR.glob("*.yaml"))
        raise FileNotFoundError(f"no world spec {path}; known worlds: {known}")
    spec = yaml.safe_load(path.read_text())
    spec.setdefault("name", path.stem)
    if spec.get("kind") not in WORLD_CLASSES:
        raise ValueError(
            f"{path}: kind must be one of {sorted(WORLD_CLASSES)}, got {spec.get('kind')!r}"
        )
    return spec


def get_world(name_or_path: str, **overrides: Any) -> World:
    """Build a world from its spec, with top-level keys overridden (e.g. max_objects=2)."""
    spec = {**load_world_spec(name_or_path), **overrides}
    return WORLD_CLASSES[spec["kind"]](spec)


def template_parser_options(name_or_path: str) -> dict[str, Any]:
    """The template parser's options for one world: its attribute words and object names
    (so only this world's captions parse) and the world's name (its parser version)."""
    world = get_world(name_or_path)
    attributes = [
        v for c in world.attribute_concepts for v in world.space.values[world.concept_position(c)]
    ]
    names = list(world.space.values[world.concept_position(world.name_concept)])
    return {"attribute_words": attributes, "names": names, "world": name_or_path}


__all__ = [
    "PlacedObject",
    "Scene",
    "SplitSpec",
    "World",
    "get_world",
    "load_world_spec",
    "template_parser_options",
]
