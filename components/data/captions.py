"""Scene -> CaptionPlan: which objects and relations a synthetic caption states.

Every object in the scene is mentioned; up to ``max_relations`` relation clauses link
objects by a predicate that holds in the geometry; with probability ``negation_rate`` the
caption ends with "and no X" for an absent object X drawn from the allowed objects (so a
held-out object is never named in a training caption, not even negated).
"""

from __future__ import annotations

import numpy as np

from components.data.grammar import CaptionPlan, Clause, MentionedObject
from components.data.worlds.base import Scene, World


def mention(world: World, values: tuple[str, ...], negated: bool = False) -> MentionedObject:
    """How the grammar names an object with these concept values."""
    named = dict(zip(world.space.names, values, strict=True))
    attributes = tuple(named[c] for c in world.attribute_concepts)
    return MentionedObject(attributes, named[world.name_concept], negated)


def plan_caption(
    world: World, scene: Scene, rng: np.random.Generator, allowed: frozenset[int]
) -> CaptionPlan:
    """Describe a scene: all objects, some true relations, maybe one true negation."""
    n = len(scene.objects)
    objects = [mention(world, obj.values) for obj in scene.objects]
    max_relations = int(world.spec.get("max_relations", 2))
    order = [int(i) for i in rng.permutation(n)]
    clauses: list[Clause] = []
    related: set[int] = set()
    for a, b in zip(order, order[1:], strict=False):
        if len(clauses) >= max_relations:
            break
        predicates = world.relations_between(scene.objects[a], scene.objects[b])
        if predicates:
            predicate = predicates[int(rng.integers(len(predicates)))]
            clauses.append(Clause(a, predicate, b, fronted=bool(rng.random() < 0.3)))
            related.update((a, b))
    clauses += [Clause(i) for i in order if i not in related]

    present = {obj.object_index for obj in scene.objects}
    absent = sorted(allowed - present)
    if absent and rng.random() < float(world.spec.get("negation_rate", 0.0)):
        choice = absent[int(rng.integers(len(absent)))]
        objects.append(mention(world, world.values_of(choice), negated=True))
        clauses.append(Clause(len(objects) - 1))
    return CaptionPlan(tuple(objects), tuple(clauses))
