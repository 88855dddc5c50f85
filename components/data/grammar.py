"""The synthetic caption grammar, in one place, so the template parser can invert it exactly.

A caption is a comma-separated list of clauses (the last prefixed by "and "):
    relation clause   "a small red cube to the left of a large blue sphere"
    fronted relation  "to the left of the large blue sphere is a small red cube"
    object clause     "a green cylinder"
    negation clause   "no yellow cube"            (the object is absent)
An object is introduced with "a"/"an" and referred to again with "the"; objects in one
caption have distinct phrases, so a definite phrase names exactly one node.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from components.parsing.grammar import RELATION_PHRASES
from components.parsing.scene_graph import Relation, SceneGraph, SceneObject

OPPOSITE_RELATION: dict[str, str] = {
    "left of": "right of",
    "right of": "left of",
    "above": "below",
    "below": "above",
    "in front of": "behind",
    "behind": "in front of",
}


@dataclass(frozen=True)
class MentionedObject:
    """An object as the caption names it: attribute words then the name word."""

    attributes: tuple[str, ...]
    name: str
    negated: bool = False

    def words(self) -> str:
        return " ".join([*self.attributes, self.name])


@dataclass(frozen=True)
class Clause:
    """One clause; ``fronted`` selects the "REL the B is a A" word order."""

    subject: int
    predicate: str | None = None
    object: int | None = None
    fronted: bool = False


@dataclass(frozen=True)
class CaptionPlan:
    """What a caption says, before words: the objects, and the clauses over them."""

    objects: tuple[MentionedObject, ...]
    clauses: tuple[Clause, ...] = field(default_factory=tuple)

    def replace_object(self, index: int, new: MentionedObject) -> CaptionPlan:
        objects = list(self.objects)
        objects[index] = new
        return CaptionPlan(tuple(objects), self.clauses)

    def replace_clause(self, index: int, new: Clause) -> CaptionPlan:
        clauses = list(self.clauses)
        clauses[index] = new
        return CaptionPlan(self.objects, tuple(clauses))

    def relation_clauses(self) -> list[int]:
        return [k for k, c in enumerate(self.clauses) if c.predicate is not None]


def _article(words: str) -> str:
    return "an" if words[0] in "aeiou" else "a"


def realise(plan: CaptionPlan) -> tuple[str, SceneGraph]:
    """Caption text and its SceneGraph; graph nodes are numbered in order of first mention."""
    order: list[int] = []  # plan object index, by first mention
    parts: list[str] = []

    def phrase(index: int) -> str:
        obj = plan.objects[index]
        if obj.negated:
            return f"no {obj.words()}"
        if index in order:
            return f"the {obj.words()}"
        order.append(index)
        return f"{_article(obj.words())} {obj.words()}"

    for clause in plan.clauses:
        if clause.predicate is None:
            if plan.objects[clause.subject].negated:
                order.append(clause.subject)
            parts.append(phrase(clause.subject))
            continue
        relation = RELATION_PHRASES[clause.predicate]
        if clause.fronted:
            target = phrase(clause.object)
            parts.append(f"{relation} {target} is {phrase(clause.subject)}")
        else:
            subject = phrase(clause.subject)
            parts.append(f"{subject} {relation} {phrase(clause.object)}")
    if len(parts) > 1:
        parts[-1] = f"and {parts[-1]}"
    caption = ", ".join(parts)

    node_of = {plan_index: node for node, plan_index in enumerate(order)}
    objects = tuple(
        SceneObject(plan.objects[i].name, plan.objects[i].attributes, plan.objects[i].negated)
        for i in order
    )
    relations = tuple(
        Relation(node_of[c.subject], c.predicate, node_of[c.object])
        for c in plan.clauses
        if c.predicate is not None
    )
    return caption, SceneGraph(objects, relations)
