"""Hard negatives for real captions, made by editing the caption's own tokens.

A synthetic caption can be re-templated from its edited graph; a COCO caption cannot (its
word order, articles and verbs would be lost). So each negative here rewrites one or two
spaCy tokens of the caption and edits the parsed graph to match:

    swap_att     two objects' attribute words exchange places   "a white cat on a red sofa"
                                                             -> "a red cat on a white sofa"
    swap_obj     the head nouns of a relation's subject and object exchange places
                                                             -> "a white sofa on a red cat"
    replace_rel  a spatial word of a relation becomes its opposite (on -> under, left ->
                 right, ...)                                 -> "a white cat under a red sofa"
    negation     an object's indefinite article becomes "no"; the object is marked negated
                 and leaves its relations                    -> "a white cat on no red sofa"

A caption whose graph supports no negative of a kind is reported for that kind with the
reason (``missing``), never dropped: the caller keeps the row and counts the kinds.

Use (helper for build_shards)::

    nlp = load_spacy()
    for doc in nlp.pipe(captions):
        result = real_negatives(doc)          # RealNegatives
        result.negatives   # [{"kind", "caption", "graph"}] -- NEGATIVE_TYPE fields
        result.missing     # {"swap_att": "fewer than two objects with attributes", ...}
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from components.parsing.scene_graph import Relation, SceneGraph, SceneObject
from components.parsing.spacy.parser import graph_with_tokens

KINDS = ("swap_att", "swap_obj", "replace_rel", "negation")
# One-token spatial opposites: a swap keeps the caption's length and grammar.
OPPOSITE_WORDS = {
    "on": "under",
    "under": "on",
    "above": "below",
    "below": "above",
    "over": "under",
    "beneath": "above",
    "underneath": "above",
    "left": "right",
    "right": "left",
    "inside": "outside",
    "outside": "inside",
    "top": "bottom",
    "bottom": "top",
    "up": "down",
    "down": "up",
}
INDEFINITE = frozenset(["a", "an", "some", "one"])


@dataclass
class RealNegatives:
    """A caption's negatives (NEGATIVE_TYPE dicts) and, per kind it lacks, the reason."""

    negatives: list[dict[str, Any]] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)


def real_negatives(
    doc: Any,
    kinds: tuple[str, ...] = KINDS,
    graph_tokens: tuple[SceneGraph, tuple[int, ...]] | None = None,
) -> RealNegatives:
    """One negative per supported kind for a parsed caption; ``missing`` names the rest.

    ``graph_tokens`` is ``graph_with_tokens(doc)`` when the caller already has
    it (the parse stage); otherwise it is computed here.
    """
    unknown = [k for k in kinds if k not in BUILDERS]
    if unknown:
        raise ValueError(f"unknown negative kinds {unknown}; known: {list(BUILDERS)}")
    out = RealNegatives()
    try:
        graph, anchors = graph_tokens if graph_tokens is not None else graph_with_tokens(doc)
    except Exception as err:  # noqa: BLE001 - an odd parse costs this row its negatives only
        out.missing = {kind: f"parse_error: {type(err).__name__}" for kind in kinds}
        return out
    for kind in kinds:
        made = BUILDERS[kind](doc, graph, anchors)
        if isinstance(made, str):
            out.missing[kind] = made
        else:
            edits, negative = made
            out.negatives.append(
                {"kind": kind, "caption": _realise(doc, edits), "graph": negative.to_dict()}
            )
    return out


def _realise(doc: Any, edits: dict[int, str]) -> str:
    """The caption with token i's text replaced by edits[i], whitespace and case kept."""
    words = []
    for token in doc:
        text = edits.get(token.i, token.text)
        if token.i in edits and token.text[:1].isupper():
            text = text[:1].upper() + text[1:]
        words.append(text + token.whitespace_)
    return "".join(words)


def _attribute_token(doc: Any, root: int, attribute: str) -> int | None:
    """The adjective token of ``attribute`` nearest to its object's head noun.

    Only adjectives swap: a noun modifier is part of the name ("cell phone", "living room"),
    and swapping it makes nonsense rather than a hard negative.
    """
    candidates = [
        t.i
        for t in doc
        if t.lower_ == attribute and t.i != root and t.pos_ == "ADJ" and t.dep_ != "compound"
    ]
    return min(candidates, key=lambda i: abs(i - root)) if candidates else None


def _swap_att(doc: Any, graph: SceneGraph, anchors: tuple[int, ...]) -> Any:
    objects = graph.objects
    for a in range(len(objects)):
        for b in range(a + 1, len(objects)):
            for word_a in objects[a].attributes:
                for word_b in objects[b].attributes:
                    if word_a == word_b or word_a in objects[b].attributes:
                        continue
                    if word_b in objects[a].attributes:
                        continue
                    i = _attribute_token(doc, anchors[a], word_a)
                    j = _attribute_token(doc, anchors[b], word_b)
                    if i is None or j is None or i == j:
                        continue
                    edited = list(objects)
                    edited[a] = _with_attribute(objects[a], word_a, word_b)
                    edited[b] = _with_attribute(objects[b], word_b, word_a)
                    return {i: doc[j].text, j: doc[i].text}, SceneGraph(
                        tuple(edited), graph.relations
                    )
    return "fewer than two objects with distinct adjectives"


def _with_attribute(obj: SceneObject, old: str, new: str) -> SceneObject:
    return replace(obj, attributes=tuple(new if a == old else a for a in obj.attributes))


def _swap_obj(doc: Any, graph: SceneGraph, anchors: tuple[int, ...]) -> Any:
    for relation in graph.relations:
        s, o = relation.subject, relation.object
        names = graph.objects[s].name, graph.objects[o].name
        if names[0] == names[1]:
            continue
        edited = list(graph.objects)
        edited[s] = replace(graph.objects[s], name=names[1])
        edited[o] = replace(graph.objects[o], name=names[0])
        i, j = anchors[s], anchors[o]
        return {i: doc[j].text, j: doc[i].text}, SceneGraph(tuple(edited), graph.relations)
    return "no relation between two differently named objects"


def _replace_rel(doc: Any, graph: SceneGraph, anchors: tuple[int, ...]) -> Any:
    for k, relation in enumerate(graph.relations):
        words = relation.predicate.split()
        for w, word in enumerate(words):
            if word not in OPPOSITE_WORDS:
                continue
            # The word sits between the subject's and the object's head nouns (or before
            # the object in a fronted clause): take the occurrence nearest the object.
            before_object = [t.i for t in doc[: anchors[relation.object]] if t.lower_ == word]
            if not before_object:
                continue
            opposite = OPPOSITE_WORDS[word]
            predicate = " ".join([*words[:w], opposite, *words[w + 1 :]])
            relations = list(graph.relations)
            relations[k] = Relation(relation.subject, predicate, relation.object)
            return {before_object[-1]: opposite}, SceneGraph(graph.objects, tuple(relations))
    return "no relation with a spatial word that has a one-word opposite"


def _negation(doc: Any, graph: SceneGraph, anchors: tuple[int, ...]) -> Any:
    # Prefer an object that is not the first one: "a kitchen with no sink" keeps the scene.
    order = list(range(1, len(graph.objects))) + [0]
    for node in order:
        if node >= len(graph.objects) or graph.objects[node].negated:
            continue
        root = doc[anchors[node]]
        articles = [c.i for c in root.children if c.dep_ == "det" and c.lower_ in INDEFINITE]
        if not articles:
            continue
        objects = list(graph.objects)
        objects[node] = replace(objects[node], negated=True)
        relations = tuple(r for r in graph.relations if node not in (r.subject, r.object))
        return {articles[0]: "no"}, SceneGraph(tuple(objects), relations)
    return "no non-negated object with an indefinite article"


BUILDERS = {
    "swap_att": _swap_att,
    "swap_obj": _swap_obj,
    "replace_rel": _replace_rel,
    "negation": _negation,
}
