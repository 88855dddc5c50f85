"""Does a parse keep what a hard negative changed? SugarCrepe pairs as a parser check.

SugarCrepe's negatives each change one element of a real COCO caption. A parser that keeps
bindings and relations must give the caption and its negative graphs that differ in that
element; an identical view means the change was lost before any model sees it. Each kind
has its own view of a graph:

    replace_att  the multiset of attribute words
    replace_rel  the multiset of predicates
    replace_obj  the multiset of object names
    add_att      the negative has an attribute word the caption lacks
    add_obj      the negative has an object name the caption lacks
    swap_obj     the (subject phrase, predicate, object phrase) triples: roles exchanged
                 (phrases, not names: SugarCrepe swaps "a white bathroom with a blue towel"
                 into "a blue bathroom with a white towel" as well as bare nouns)
    swap_att     the (object name, attribute) bindings

``graph_changed`` is the looser check (the graphs differ at all), reported beside it: a
SugarCrepe negative sometimes changes another element than its file says (replace_att
items that replace a noun, "an armchair" -> "a sofa").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from components.parsing.scene_graph import SceneGraph


def _attribute_words(graph: SceneGraph) -> Counter:
    return Counter(a for o in graph.objects for a in o.attributes)


def _object_names(graph: SceneGraph) -> Counter:
    return Counter(o.name for o in graph.objects)


def _predicates(graph: SceneGraph) -> Counter:
    return Counter(r.predicate for r in graph.relations)


def _roles(graph: SceneGraph) -> Counter:
    return Counter(graph.triples())


def _bindings(graph: SceneGraph) -> Counter:
    return Counter((o.name, a) for o in graph.objects for a in o.attributes)


def _differs(view: Callable[[SceneGraph], Counter]) -> Callable[[SceneGraph, SceneGraph], bool]:
    return lambda caption, negative: view(caption) != view(negative)


def _adds(view: Callable[[SceneGraph], Counter]) -> Callable[[SceneGraph, SceneGraph], bool]:
    return lambda caption, negative: bool(view(negative) - view(caption))


CHANGE_CHECKS: dict[str, Callable[[SceneGraph, SceneGraph], bool]] = {
    "replace_att": _differs(_attribute_words),
    "replace_rel": _differs(_predicates),
    "replace_obj": _differs(_object_names),
    "add_att": _adds(_attribute_words),
    "add_obj": _adds(_object_names),
    "swap_obj": _differs(_roles),
    "swap_att": _differs(_bindings),
}


def change_kept(kind: str, caption: SceneGraph, negative: SceneGraph) -> bool:
    """True when the graphs differ in the element a ``kind`` negative changes."""
    if kind not in CHANGE_CHECKS:
        raise KeyError(f"unknown negative kind {kind!r}; known: {sorted(CHANGE_CHECKS)}")
    return CHANGE_CHECKS[kind](caption, negative)


def graph_changed(caption: SceneGraph, negative: SceneGraph) -> bool:
    """True when the graphs differ at all (node phrases, negation or relation triples)."""
    return (Counter(caption.node_phrases()), Counter(caption.triples()), _negated(caption)) != (
        Counter(negative.node_phrases()),
        Counter(negative.triples()),
        _negated(negative),
    )


def _negated(graph: SceneGraph) -> Counter:
    return Counter(o.name for o in graph.objects if o.negated)
