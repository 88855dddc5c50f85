"""Parse quality against gold graphs: micro F1 on objects, attributes and relations.

Units, each matched as a multiset over a caption and summed over the data set:
    object     node phrase, "no " prefixed when negated ("white cat", "no window")
    attribute  (object name, attribute) pair ("cat", "white")
    relation   (subject phrase, predicate, object phrase) triple
So a parser that swaps colours between objects ("red cat on a white sofa" for "white cat
on a red sofa") loses object and attribute credit, even though the words are all there.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

from components.parsing.scene_graph import SceneGraph


@dataclass
class F1Count:
    """True positives and the predicted / gold totals for one unit."""

    matched: int = 0
    predicted: int = 0
    gold: int = 0

    def add(self, predicted: Iterable[Hashable], gold: Iterable[Hashable]) -> None:
        p, g = Counter(predicted), Counter(gold)
        self.matched += sum((p & g).values())
        self.predicted += sum(p.values())
        self.gold += sum(g.values())

    @property
    def precision(self) -> float:
        return self.matched / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.matched / self.gold if self.gold else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def object_units(graph: SceneGraph) -> list[str]:
    return [("no " if o.negated else "") + o.phrase() for o in graph.objects]


def attribute_units(graph: SceneGraph) -> list[tuple[str, str]]:
    return [(o.name, a) for o in graph.objects for a in o.attributes]


def relation_units(graph: SceneGraph) -> list[tuple[str, str, str]]:
    return graph.triples()


def parse_f1(predicted: list[SceneGraph], gold: list[SceneGraph]) -> dict[str, dict[str, float]]:
    """{"object"|"attribute"|"relation": {"precision", "recall", "f1"}} over paired graphs."""
    if len(predicted) != len(gold):
        raise ValueError(f"{len(predicted)} predicted graphs for {len(gold)} gold graphs")
    counts = {"object": F1Count(), "attribute": F1Count(), "relation": F1Count()}
    units = {"object": object_units, "attribute": attribute_units, "relation": relation_units}
    for p, g in zip(predicted, gold, strict=True):
        for name, unit in units.items():
            counts[name].add(unit(p), unit(g))
    return {
        name: {"precision": c.precision, "recall": c.recall, "f1": c.f1}
        for name, c in counts.items()
    }
