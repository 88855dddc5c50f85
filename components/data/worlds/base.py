"""What every synthetic world provides: a concept space, a scene sampler and a renderer.

Worlds are data: each is a YAML spec under datasets/ naming a registered world class and
its parameters, so a researcher makes a new world by copying a YAML file, not code.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from components.data.concepts import ConceptSpace
from components.data.splits import role_from_name


@dataclass(frozen=True)
class PlacedObject:
    """One object in a scene: its identity and where it sits (coordinates in [0, 1])."""

    object_index: int
    values: tuple[str, ...]
    center: tuple[float, float]
    depth: float  # 0 = nearest the camera, 1 = farthest
    bbox: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # x0, y0, x1, y1


@dataclass(frozen=True)
class Scene:
    objects: tuple[PlacedObject, ...]

    def with_values(self, index: int, values: tuple[str, ...], object_index: int) -> Scene:
        """The same layout with one object's concept values changed (counterfactuals)."""
        objects = list(self.objects)
        objects[index] = replace(objects[index], values=values, object_index=object_index)
        return Scene(tuple(objects))


@dataclass(frozen=True)
class SplitSpec:
    """A split's name, its share of scenes, and which objects it may draw."""

    name: str
    fraction: float
    objects: str  # "seen", "heldout", "heldout_val", "heldout_test" or "all"

    @property
    def role(self) -> str:
        """train | select | final, written into the card so readers guard by role."""
        return role_from_name(self.name)


class World(ABC):
    """A synthetic world; subclasses sample layouts and render them."""

    name: str
    space: ConceptSpace
    name_concept: str  # the concept a caption uses as the noun ("shape")
    attribute_concepts: tuple[str, ...]  # concepts spoken as adjectives, in phrase order

    def __init__(self, spec: dict[str, Any]):
        self.spec = spec
        self.name = spec["name"]

    @abstractmethod
    def split_specs(self) -> list[SplitSpec]:
        """The splits this world builds, in order."""

    @abstractmethod
    def sample_scene(self, rng: np.random.Generator, split: str, allowed: frozenset[int]) -> Scene:
        """A random scene whose objects all come from ``allowed``."""

    @abstractmethod
    def render(self, scene: Scene, image_size: int) -> tuple[np.ndarray, np.ndarray, Scene]:
        """(RGB uint8 HxWx3, instance mask uint8 HxW, scene with pixel-exact bboxes)."""

    def relations_between(self, a: PlacedObject, b: PlacedObject) -> list[str]:
        """Spatial predicates that hold for (a, b); worlds without geometry have none."""
        return []

    def mirrored(self, scene: Scene, predicate: str) -> Scene | None:
        """The layout reflected so that ``predicate`` reverses, or None if unsupported."""
        return None

    def card_extras(self, split_sizes: dict[str, int]) -> dict[str, Any]:
        """World-specific facts for the dataset card (e.g. exact entropies)."""
        return {}

    def values_of(self, object_index: int) -> tuple[str, ...]:
        return self.space.object_values(object_index)

    def concept_position(self, concept: str) -> int:
        return self.space.names.index(concept)
