"""Hard negatives: captions that differ from the positive in exactly one intended way.

Each kind changes one thing (the SugarCrepe / ARO taxonomy on our grammar):
    swap_att     one attribute value exchanged between two objects
    swap_obj     the nouns (names) exchanged between two objects
    replace_att  one object's attribute replaced by a value not in the scene
    replace_rel  a relation's predicate replaced by its opposite
    swap_rel     a relation's subject and object exchanged
    negation     "and no Y" with Y present, contrasted with "and no X" for an absent X
Where the negative is true of a counterfactual image (attributes swapped, layout mirrored),
that scene is returned too. Every object a negative names lies in ``allowed``, so training
negatives never name held-out objects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from components.data.captions import mention
from components.data.grammar import OPPOSITE_RELATION, CaptionPlan, Clause
from components.data.worlds.base import Scene, World

NEGATIVE_KINDS = ("swap_att", "swap_obj", "replace_att", "replace_rel", "swap_rel", "negation")


@dataclass(frozen=True)
class Negative:
    kind: str
    plan: CaptionPlan
    scene: Scene | None = None  # counterfactual scene the negative caption is true of
    positive: CaptionPlan | None = None  # contrast caption when not the record's own


def _with_values(world: World, plan: CaptionPlan, scene: Scene, changes: dict[int, tuple]):
    """Apply {object: new values} to both the plan and the scene."""
    for i, values in changes.items():
        plan = plan.replace_object(i, mention(world, values))
        scene = scene.with_values(i, values, world.space.index_of_values(values))
    return plan, scene


def _pick(rng: np.random.Generator, options: list):
    return options[int(rng.integers(len(options)))] if options else None


def _swap_concept(concept: str, kind: str) -> Callable[..., Negative | None]:
    def build(world, plan, scene, rng, allowed):
        pos = world.concept_position(concept)
        options = []
        n = len(scene.objects)
        for i in range(n):
            for j in range(i + 1, n):
                vi, vj = list(scene.objects[i].values), list(scene.objects[j].values)
                if vi[pos] == vj[pos] or sum(a != b for a, b in zip(vi, vj, strict=True)) < 2:
                    continue  # objects equal but for this concept: a swap would just swap them
                vi[pos], vj[pos] = vj[pos], vi[pos]
                new = {i: tuple(vi), j: tuple(vj)}
                others = {o.values for k, o in enumerate(scene.objects) if k not in new}
                # a swapped object that duplicates another would make "the X" ambiguous
                if all(
                    world.space.index_of_values(v) in allowed and v not in others
                    for v in new.values()
                ):
                    options.append(new)
        changes = _pick(rng, options)
        if changes is None:
            return None
        return Negative(kind, *_with_values(world, plan, scene, changes))

    return build


def _replace_att(world, plan, scene, rng, allowed):
    concept = world.spec.get("swap_concept", world.attribute_concepts[0])
    pos = world.concept_position(concept)
    present = {o.object_index for o in scene.objects}
    options = []
    for i, obj in enumerate(scene.objects):
        for value in world.space.values[pos]:
            if value == obj.values[pos]:
                continue
            values = list(obj.values)
            values[pos] = value
            index = world.space.index_of_values(tuple(values))
            if index in allowed and index not in present:
                options.append({i: tuple(values)})
    changes = _pick(rng, options)
    return (
        None
        if changes is None
        else Negative("replace_att", *_with_values(world, plan, scene, changes))
    )


def _relation_negative(kind: str) -> Callable[..., Negative | None]:
    def build(world, plan, scene, rng, allowed):
        k = _pick(rng, plan.relation_clauses())
        if k is None:
            return None
        clause = plan.clauses[k]
        if kind == "replace_rel":
            new = Clause(
                clause.subject, OPPOSITE_RELATION[clause.predicate], clause.object, clause.fronted
            )
        else:
            new = Clause(clause.object, clause.predicate, clause.subject, clause.fronted)
        single = len(plan.relation_clauses()) == 1
        counterfactual = world.mirrored(scene, clause.predicate) if single else None
        return Negative(kind, plan.replace_clause(k, new), counterfactual)

    return build


def _negation(world, plan, scene, rng, allowed):
    present = {o.object_index for o in scene.objects}
    false_target = scene.objects[int(rng.integers(len(scene.objects)))].values
    negated = [k for k, c in enumerate(plan.clauses) if plan.objects[c.subject].negated]
    if negated:  # the caption already says "no X": make X a present object instead
        k = negated[0]
        index = plan.clauses[k].subject
        return Negative("negation", plan.replace_object(index, mention(world, false_target, True)))
    absent = sorted(allowed - present)
    if not absent:
        return None
    true_target = world.values_of(absent[int(rng.integers(len(absent)))])

    def with_negation(values):
        objects = (*plan.objects, mention(world, values, negated=True))
        return CaptionPlan(objects, (*plan.clauses, Clause(len(objects) - 1)))

    return Negative("negation", with_negation(false_target), positive=with_negation(true_target))


def _builders(world: World) -> dict[str, Callable[..., Negative | None]]:
    swap_concept = world.spec.get("swap_concept", world.attribute_concepts[0])
    return {
        "swap_att": _swap_concept(swap_concept, "swap_att"),
        "swap_obj": _swap_concept(world.name_concept, "swap_obj"),
        "replace_att": _replace_att,
        "replace_rel": _relation_negative("replace_rel"),
        "swap_rel": _relation_negative("swap_rel"),
        "negation": _negation,
    }


def make_negatives(
    world: World,
    plan: CaptionPlan,
    scene: Scene,
    rng: np.random.Generator,
    allowed: frozenset[int],
    kinds: tuple[str, ...] = NEGATIVE_KINDS,
) -> list[Negative]:
    """At most one negative of each kind; kinds the scene cannot support are absent."""
    builders = _builders(world)
    negatives = []
    for kind in kinds:
        negative = builders[kind](world, plan, scene, rng, allowed)
        if negative is not None:
            negatives.append(negative)
    return negatives
