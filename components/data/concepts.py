"""Concept spaces and coverage splits.

An *object* is one combination of concept values (colour x shape x ...), indexed in mixed
radix with the first concept varying slowest. Coverage is defined on this object space,
as in "How can embedding models bind concepts?": a seeded permutation puts a fraction
``coverage`` of objects in the seen set; the rest are held out of all training data.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class ConceptSpace:
    """Named concepts, each with an ordered tuple of values."""

    names: tuple[str, ...]
    values: tuple[tuple[str, ...], ...]

    @classmethod
    def from_mapping(cls, concepts: dict[str, list[str]]) -> ConceptSpace:
        if not concepts:
            raise ValueError("a concept space needs at least one concept")
        for name, vals in concepts.items():
            if len(vals) < 1 or len(set(vals)) != len(vals):
                raise ValueError(f"concept {name!r} needs distinct values, got {vals}")
        return cls(tuple(concepts), tuple(tuple(v) for v in concepts.values()))

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.values)

    @property
    def num_objects(self) -> int:
        return int(np.prod(self.sizes))

    @property
    def num_features(self) -> int:
        return sum(self.sizes)

    @cached_property
    def feature_offsets(self) -> tuple[int, ...]:
        """Start of each concept's block in the feature code."""
        return tuple(int(x) for x in np.cumsum((0, *self.sizes[:-1])))

    def object_index(self, value_indices: tuple[int, ...]) -> int:
        return int(np.ravel_multi_index(value_indices, self.sizes))

    def value_indices(self, object_index: int) -> tuple[int, ...]:
        return tuple(int(i) for i in np.unravel_index(object_index, self.sizes))

    def object_values(self, object_index: int) -> tuple[str, ...]:
        return tuple(
            vals[i] for vals, i in zip(self.values, self.value_indices(object_index), strict=True)
        )

    def index_of_values(self, values: tuple[str, ...]) -> int:
        return self.object_index(
            tuple(v.index(x) for v, x in zip(self.values, values, strict=True))
        )

    def all_objects(self) -> list[tuple[str, ...]]:
        return list(itertools.product(*self.values))

    def object_code(self, object_indices: list[int]) -> np.ndarray:
        """Multi-hot over all objects (O in the binding-information papers)."""
        code = np.zeros(self.num_objects, dtype=np.uint8)
        code[list(object_indices)] = 1
        return code

    def feature_code(self, object_indices: list[int]) -> np.ndarray:
        """Multi-hot over concept values present in the scene (F = 1[O M > 0])."""
        code = np.zeros(self.num_features, dtype=np.uint8)
        for index in object_indices:
            for offset, value in zip(self.feature_offsets, self.value_indices(index), strict=True):
                code[offset + value] = 1
        return code


@dataclass(frozen=True)
class CoverageSplit:
    """Which objects training may use (seen) and which only tests see (heldout)."""

    seen: frozenset[int]
    heldout: frozenset[int]
    coverage: float
    seed: int


def coverage_split(
    space: ConceptSpace, coverage: float, seed: int, cover_values: bool = False
) -> CoverageSplit:
    """Seeded permutation of the object space; the first ``coverage`` fraction is seen.

    A pure function of its arguments, so rebuilding a dataset reproduces it.
    ``cover_values`` first puts a seeded "diagonal" of max(V) objects in the seen set so
    that every value of every concept occurs in training, then fills the rest in
    permutation order. Small CPU-sized worlds need it: at 10% of 100 objects a plain
    permutation leaves values unseen, which makes concept recognition fail for a reason
    unrelated to binding (the paper's worlds of >= 2,500 objects cover every value anyway).
    """
    if not 0.0 < coverage <= 1.0:
        raise ValueError(f"coverage must be in (0, 1], got {coverage}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(space.num_objects)
    num_seen = max(1, int(np.floor(coverage * space.num_objects)))
    if cover_values:
        widest = max(space.sizes)
        if num_seen < widest:
            raise ValueError(
                f"coverage {coverage} gives {num_seen} seen objects, fewer than the {widest} "
                "needed to cover every concept value; raise coverage or set cover_values=false"
            )
        shuffled = [rng.permutation(size) for size in space.sizes]
        diagonal = [
            space.object_index(tuple(int(p[k % len(p)]) for p in shuffled)) for k in range(widest)
        ]
        taken = set(diagonal)
        rest = [int(i) for i in order if int(i) not in taken]
        order = np.array(diagonal + rest)
    return CoverageSplit(
        seen=frozenset(int(i) for i in order[:num_seen]),
        heldout=frozenset(int(i) for i in order[num_seen:]),
        coverage=coverage,
        seed=seed,
    )


def heldout_partition(
    coverage: CoverageSplit, min_split: int
) -> tuple[frozenset[int], frozenset[int]]:
    """(validation, test) held-out objects, so model choice never sees a test object.

    With at least ``min_split`` held-out objects they are halved by a seeded permutation
    (as the coverage sweep splits them); a smaller world cannot spare objects, so both
    sides get every held-out object and only the scenes differ.
    """
    heldout = sorted(coverage.heldout)
    if len(heldout) < max(2, min_split):
        return frozenset(heldout), frozenset(heldout)
    order = np.random.default_rng(coverage.seed + 1).permutation(heldout)
    half = len(order) // 2
    return frozenset(int(i) for i in order[:half]), frozenset(int(i) for i in order[half:])
