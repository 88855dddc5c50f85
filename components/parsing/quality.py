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

A SugarCrepe negative sometimes changes another element than its file says: replace_att
holds items that replace a noun ("an armchair" -> "a sofa") or a verb ("wearing a hat" ->
"removing a hat"), replace_rel verbs that have no object ("a boy smiling" -> "a boy
frowning"), which this graph form keeps as a state of the subject, an attribute word, as
Visual Genome does. No parser of this graph form can show those in its file's view.
``change_class`` says what the negative changed, by spaCy's tags on the words that differ,
and ``element_kept`` also scores a replace item in the view where the graph keeps that
class (``CLASS_VIEWS``) when the change is one class of word. Both are reported:
the file's view as the issue first wrote it, the changed element's view as what it meant.
``graph_changed`` is the loosest check (the graphs differ at all).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from difflib import SequenceMatcher
from typing import Any

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


# Coarse classes of the words a negative changed, by spaCy's universal tags.
CHANGE_CLASSES = {
    "NOUN": "noun",
    "PROPN": "noun",
    "VERB": "verb",
    "AUX": "verb",
    "ADJ": "adjective",
    "ADV": "adverb or preposition",
    "ADP": "adverb or preposition",
    "PART": "adverb or preposition",
}


# Where this graph form keeps a word of each class: a verb with an object is a predicate,
# one without is a state of its subject (an attribute word); a preposition joins a predicate.
CLASS_VIEWS: dict[str, tuple[Callable[[SceneGraph], Counter], ...]] = {
    "noun": (_object_names,),
    "adjective": (_attribute_words,),
    "verb": (_predicates, _attribute_words),
    "adverb or preposition": (_predicates,),
}


def element_kept(kind: str, caption: SceneGraph, negative: SceneGraph, change: str) -> bool:
    """``change_kept``, or, for a replace item whose negative changed one class of word
    (``change``, from ``change_class``), the graphs differ where that class is kept.

    Only the replace files are re-aimed: an add or swap file's view is a structure (an
    extra element, exchanged roles), not a class of word. A "mixed" or "other" change
    keeps its file's view.
    """
    if change_kept(kind, caption, negative):
        return True
    if not kind.startswith("replace_") or change not in CLASS_VIEWS:
        return False
    return any(view(caption) != view(negative) for view in CLASS_VIEWS[change])


def change_class(caption_doc: Any, negative_doc: Any) -> str:
    """What a negative changed: "noun", "verb", "adjective", "adverb or preposition" when
    every changed word on both sides has that class, else "mixed" (or "other"). A verb
    changed with its particle or adverb ("sitting down" -> "standing up") is "verb".

    Words are compared lower-cased, punctuation, determiners and conjunctions left out
    ("A" / "a", "sofa." / "sofa"), so only content changes count.
    """

    def words(doc: Any) -> list[Any]:
        return [t for t in doc if t.pos_ not in ("PUNCT", "DET", "CCONJ", "SPACE")]

    a, b = words(caption_doc), words(negative_doc)
    opcodes = SequenceMatcher(a=[t.lower_ for t in a], b=[t.lower_ for t in b]).get_opcodes()
    changed = [t for op, i1, i2, j1, j2 in opcodes if op != "equal" for t in a[i1:i2] + b[j1:j2]]
    classes = {CHANGE_CLASSES.get(t.pos_, "other") for t in changed}
    if "verb" in classes and classes <= {"verb", "adverb or preposition"}:
        return "verb"
    if len(classes) == 1:
        return classes.pop()
    return "mixed" if classes else "other"


def change_classes(docs: list[Any]) -> list[str]:
    """``change_class`` of each pair in [caption, negative, caption, negative, ...] Docs:
    what an item changed is a property of its texts, the same whichever parser is scored."""
    return [change_class(docs[at], docs[at + 1]) for at in range(0, len(docs), 2)]
