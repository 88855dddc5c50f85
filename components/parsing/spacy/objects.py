"""Objects of a caption from its noun phrases (the first pass of the graph builder)."""

from __future__ import annotations

from typing import Any

from components.parsing.scene_graph import Relation, SceneObject
from components.parsing.spacy.lexicon import (
    ATTRIBUTE_DEPS,
    INDEFINITE_PRONOUNS,
    NEGATING_DETERMINERS,
    NEGATING_PREPOSITIONS,
    NOT_ATTRIBUTES,
    SKIPPED_ATTRIBUTE_POS,
)
from components.parsing.spacy.misparsed_modifiers import (
    adverbial_noun_modifiers,
    leading_participles,
    manner_adverbs,
)
from components.parsing.spacy.misread_nouns import misread_compound
from components.parsing.spacy.nouns import (
    chained_participle,
    folded_into,
    hyphen_start,
    hyphenated_word,
    inner_coordinate,
    is_reciprocal,
    is_relational,
    is_worn_colour,
    misread_part,
    noun_name,
    noun_phrases,
)


class ObjectCollector:
    """The graph's nodes: one object per noun phrase, its modifiers folded in as attributes.

    Holds the state the relation pass (``relations.GraphBuilder``) reads and extends: the
    node of each head-noun token, coordinated and chained objects, pronoun referents.
    """

    def __init__(self, doc: Any):
        self.doc = doc
        self.node_of: dict[int, int] = {}  # token index -> node index
        self.objects: list[SceneObject] = []
        self.relations: list[Relation] = []
        self.coordinated: list[tuple[int, int]] = []  # (chunk head node, inner coordinate node)
        self.chained: dict[int, tuple[Any, Any]] = {}  # chunk root -> (first object, participle)
        self.referent: dict[int, int] = {}  # pronoun index -> the noun it points back to
        self.subjects_of: dict[int, list[Any]] = {}  # verb index -> its _subjects

    # -- nodes --------------------------------------------------------------------------
    def collect_objects(self) -> None:
        folded: dict[int, list[str]] = {}  # of-object root -> quantity words folded into it
        chunks = [
            c
            for c in noun_phrases(self.doc)
            if (
                c.root.pos_ != "PRON"
                or c.root.lower_ in INDEFINITE_PRONOUNS
                and not is_reciprocal(c.root)
            )
            and not is_worn_colour(c.root)
        ]
        into = {c.root.i: folded_into(c.root) for c in chunks}  # chunk root -> its head
        for chunk in chunks:
            root = chunk.root
            counted = into[root.i]
            if counted is not None:
                folded.setdefault(counted.i, []).extend(self._modifiers(chunk) + [root.lower_])
        for chunk in chunks:
            root = chunk.root
            if is_relational(root) or misread_part(root) is not None:
                continue
            counted = into[root.i]
            if counted is not None and counted.i in folded:
                continue  # resolved below: the quantity noun stands for what it counts
            negated = self._is_negated(chunk)
            participle = chained_participle(chunk)
            if participle is not None:
                worn = self.doc[participle.i - 1]  # "vest": the first clause's object
                words = [t.lower_ for t in self.doc[chunk.start : worn.i] if t.pos_ != "PUNCT"]
                self.node_of[worn.i] = len(self.objects)
                self.objects.append(SceneObject(worn.lower_, tuple(words), negated))
                self.chained[root.i] = (worn, participle)
                chunk = self.doc[participle.i + 1 : root.i + 1]
            inner = inner_coordinate(chunk)
            if inner is not None:
                # Its own left modifiers are its attributes; its conjoined adjectives
                # ("white" in "red tile and white cabinets") stay with the chunk head.
                inner_words = self._modifiers(chunk, only=set(t.i for t in inner.lefts))
                inner_obj = SceneObject(noun_name(inner), tuple(inner_words), negated)
                self.node_of[inner.i] = len(self.objects)
                self.objects.append(inner_obj)
            exclude = set() if inner is None else {inner.i, *(t.i for t in inner.lefts)}
            attributes = (
                folded.get(root.i, [])
                + leading_participles(root)
                + self._modifiers(chunk, exclude=exclude)
            )
            obj = SceneObject(noun_name(root), tuple(attributes), negated)
            definite = any(t.dep_ == "det" and t.lower_ == "the" for t in chunk)
            if definite and obj in self.objects:  # "the red cube" refers back to "a red cube"
                self.node_of[root.i] = self.objects.index(obj)
                continue
            self.node_of[root.i] = len(self.objects)
            self.objects.append(obj)
            if inner is not None:
                self.coordinated.append((self.node_of[root.i], self.node_of[inner.i]))
        # A folded noun is an alias of the node it describes, for relations.
        for root_i, counted in into.items():
            if counted is not None and counted.i in self.node_of and root_i not in self.node_of:
                self.node_of[root_i] = self.node_of[counted.i]

    def _modifiers(
        self, chunk: Any, exclude: set[int] = frozenset(), only: set[int] | None = None
    ) -> list[str]:
        """Attribute words of a chunk (or of the ``only`` tokens in it), hyphen parts of the
        head noun excluded: they are its name."""
        root = chunk.root
        skip: set[int] = set(exclude) | set(range(hyphen_start(root), root.i + 1))
        # "a FLOWERY field", "a NEATLY made bed", "a white BATHROOM sink"
        compounds = {t.i for t in chunk if t.head.i == root.i and misread_compound(t)}
        adverbial = adverbial_noun_modifiers(chunk) | manner_adverbs(chunk) | compounds
        for token in chunk:
            if token.i in adverbial:
                continue
            if token.dep_ in ("poss", "advmod", "npadvmod", "det", "predet", "case"):
                skip.update(t.i for t in token.subtree)
        words: dict[int, str] = {}  # first token of the word -> the word
        for token in chunk:
            if (
                token.i not in skip
                and (only is None or token.i in only)
                and token.pos_ not in SKIPPED_ATTRIBUTE_POS
                and token.text != "-"
                and (token.dep_ in ATTRIBUTE_DEPS or token.i in adverbial)
                and token.lower_ not in NOT_ATTRIBUTES
            ):
                # "double-decked": one word as written, however many of its parts count
                words.setdefault(hyphen_start(token), hyphenated_word(token))
        return list(words.values())

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
