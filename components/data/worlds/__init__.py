"""World registry: a world is chosen by name; its spec is a YAML file under datasets/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from components.data.splits import read_split_roles
from components.data.worlds.base import PlacedObject, Scene, SplitSpec, World
from components.data.worlds.clevr import ClevrWorld
from components.data.worlds.colorshape import ColorShapeWorld
from components.parsing.registry import get_parser
from components.platform.storage import child, exists, read_bytes

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


def world_split_roles(name_or_path: str) -> dict[str, str]:
    """Split -> role (train | select | final) of a world, known before it is built."""
    return {split.name: split.role for split in get_world(name_or_path).split_specs()}


def data_split_roles(data: str, world: str) -> dict[str, str]:
    """The roles of the splits a run will read: ``data``'s card when data is given, else
    the synthetic ``world``'s spec; what config checks and ``auto`` splits go by."""
    return read_split_roles(data) if data else world_split_roles(world)


def template_parser_options(name_or_path: str) -> dict[str, Any]:
    """The template parser's options for one world: its attribute words and object names
    (so only this world's captions parse) and the world's name (its parser version)."""
    world = get_world(name_or_path)
    attributes = [
        v for c in world.attribute_concepts for v in world.space.values[world.concept_position(c)]
    ]
    names = list(world.space.values[world.concept_position(world.name_concept)])
    return {"attribute_words": attributes, "names": names, "world": name_or_path}


def world_of_data(data: str | Path) -> str | None:
    """The world named in ``data``'s card; None for own data (build_shards has no world)."""
    card_path = str(child(data, "card.json"))
    return json.loads(read_bytes(card_path)).get("world") if exists(card_path) else None


def parser_for_data(parser: str, data: str | Path) -> Any:
    """The named caption parser for ``data``: the template parser gets the vocabulary of the
    world in data's card (own data has no world, and no vocabulary)."""
    world = world_of_data(data)
    options = template_parser_options(world) if parser == "template" and world else {}
    return get_parser(parser, **options)


__all__ = [
    "PlacedObject",
    "Scene",
    "SplitSpec",
    "World",
    "get_world",
    "load_world_spec",
    "template_parser_options",
    "world_split_roles",
    "data_split_roles",
    "parser_for_data",
    "world_of_data",
]
