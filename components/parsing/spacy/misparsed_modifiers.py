"""Adjectives the small spaCy model parses as something else, read back as attributes.

en_core_web_sm often misreads a rare attributive adjective or participle before a noun:

    "walking on SPARKLING sand"          sparkling  VERB pcomp of "on", sand its dobj
    "zebras and STRIPED giraffes"        striped    VERB (VBD) ROOT, giraffes its dobj
    "there are DANCING women"            dancing    VERB ROOT of "there are"
    "a sheep along a FLOWERY wide field" flowery    NOUN npadvmod of "wide"
    "a POINTY pink flat shoe"            pointy     ADJ advmod of "pink"
    "a NEATLY made bed"                  neatly     ADV advmod of "made", skipped as an adverb
    "the SMUDGED side of a train"        smudged    amod of the relational noun "side"
    "in a FENCED in area"                fenced     VERB pobj of "in", "area" under its "in"

Each reading loses the word (or turns it into a relation "sparkling" from the walker to the
sand). These are structural tests, no word lists: a verb cannot take a bare, article-less
object right after a preposition ("on sparkling the sand" is not English, "after eating
pizza" is, so temporal and purpose prepositions are left alone).
"""

from __future__ import annotations

from typing import Any

# Prepositions after which a gerund with an object is a real clause: "after eating pizza",
# "by riding a horse", "for cutting bread", "without wearing a shirt".
CLAUSAL_PREPOSITIONS = frozenset(
    [
        "after", "before", "by", "for", "from", "since", "until", "upon", "while",
        "without", "despite", "instead", "besides", "about", "like",
    ]
)  # fmt: skip
# Adjectives of a relational noun that say where, not what: "the far side of", "the upper
# left of"; they stay in the predicate.
SPATIAL_ADJECTIVES = frozenset(
    [
        "left", "right", "far", "near", "upper", "lower", "top", "bottom", "front", "back",
        "middle", "center", "centre", "opposite", "other", "same", "very", "inner", "outer",
        "rear", "northern", "southern", "eastern", "western",
    ]
)  # fmt: skip


def _after_noun_conjunction(verb: Any) -> bool:
    """'striped' in "zebras and striped giraffes": a past form right after an "and" (or
    "or") that coordinates nouns, where a second verb would need its own subject; or that
    joins a present-tense verb, which a second verb would match in tense ("wears orange
    shirts and striped black caps", "has ... and spotted warthogs")."""
    if verb.i == 0 or verb.tag_ not in ("VBD", "VBN"):
        return False
    cc = verb.doc[verb.i - 1]
    if cc.dep_ != "cc" or cc.lower_ not in ("and", "or"):
        return False
    present = verb.dep_ == "conj" and verb.head.tag_ in ("VBZ", "VBP", "VBG")
    return cc.head.pos_ in ("NOUN", "PROPN") or present


def _existential(verb: Any) -> bool:
    """'dancing' in "there are dancing women": the model makes the participle the verb of
    "there are" and the noun its object."""
    return verb.tag_ == "VBG" and any(c.dep_ == "expl" for c in verb.children)


# Adverbs of degree, not manner: "a VERY used ...", "a NOT yet ripe ...".
DEGREE_ADVERBS = frozenset(
    [
        "very", "so", "too", "quite", "rather", "really", "extremely", "more", "most", "less",
        "least", "also", "just", "even", "still", "not", "never", "almost", "nearly", "only",
        "somewhat", "fairly", "pretty", "all", "already", "yet",
    ]
)  # fmt: skip


def is_misparsed_participle(verb: Any) -> bool:
    """'sparkling' in "walking on sparkling sand": a participle the model made a verb.

    A VERB that is the ``pcomp`` of a locating preposition, a past form right after a
    noun-coordinating "and" ("zebras and STRIPED giraffes") or the verb of "there are"
    ("there are DANCING women"), whose direct object follows it at once with no article
    ("sparkling sand", "glimmering little decorations"), is an attributive participle of
    that object.
    """
    if verb.pos_ != "VERB" or verb.tag_ not in ("VBG", "VBN", "VBD", "JJ"):
        return False
    prepositional = (
        verb.dep_ == "pcomp"
        and verb.head.lower_ not in CLAUSAL_PREPOSITIONS
        and verb.left_edge.i == verb.i  # not "at laptop playing video game"
    )
    existential = _existential(verb)
    if not (prepositional or existential or _after_noun_conjunction(verb)):
        return False
    obj = next((c for c in verb.children if c.dep_ == "dobj"), None)
    return (
        obj is not None
        and obj.pos_ in ("NOUN", "PROPN")
        and obj.left_edge.i == verb.i + 1
        and not any(c.dep_ in ("det", "poss", "nsubj") for c in obj.children)
        and not any(
            (c.dep_ == "aux" and not existential)  # "has eaten pizza": a real verb
            or c.dep_ == "prt"
            or (c.dep_ == "nsubj" and c.i > verb.i)
            for c in verb.children
        )
    )


def participle_object(verb: Any) -> Any:
    """The noun a prepositional participle describes ("sand"), else None."""
    if not is_misparsed_participle(verb):
        return None
    return next(c for c in verb.children if c.dep_ == "dobj")


def article_participle_noun(verb: Any) -> Any:
    """'area' for 'fenced' in "in a (wooden) FENCED in area", else None.

    A verb takes no article, so a participle with one is attributive; the model hangs the
    rest of the phrase ("in area") on it as its own preposition. The noun of that phrase,
    bare and right after it, is what the participle describes.
    """
    if (
        verb.pos_ != "VERB"
        or verb.tag_ not in ("VBN", "VBD")
        or not any(c.dep_ == "det" for c in verb.children)
    ):
        return None
    for prep in verb.rights:
        noun = next((c for c in prep.children if c.dep_ == "pobj"), None)
        if (
            prep.dep_ == "prep"
            and prep.i == verb.i + 1
            and noun is not None
            and noun.pos_ in ("NOUN", "PROPN")
            and noun.left_edge.i == prep.i + 1
            and not any(c.dep_ in ("det", "poss") for c in noun.children)
        ):
            return noun
    return None


def leading_participles(root: Any) -> list[str]:
    """Participles the model hung over ``root`` as its verb: "sparkling" for "sand",
    "wooden fenced" for "area" (with the participle's own adjectives)."""
    head = root.head
    if root.dep_ == "dobj" and head.i < root.i:
        obj = participle_object(head)
        if obj is not None and obj.i == root.i:
            return [head.lower_]
    verb = head.head
    if root.dep_ == "pobj" and getattr(article_participle_noun(verb), "i", None) == root.i:
        described = [t.lower_ for t in verb.lefts if t.dep_ in ("amod", "compound")]
        return [*described, verb.lower_]
    return []


def adverbial_noun_modifiers(chunk: Any) -> set[int]:
    """Token indices of nouns and adjectives the model made adverbs of an adjective inside
    a chunk.

    "a flowery wide field": "flowery" is read as a NOUN ``npadvmod`` of "wide" (as in "ten
    feet tall"); "a pointy pink flat shoe": "pointy" an ADJ ``advmod`` of "pink". Inside a
    noun phrase they still describe the head noun, so they are attributes. Only directly
    before the adjective, whose head is the chunk's noun; true adverbs ("very") are ADV.
    """
    return {
        t.i
        for t in chunk
        if (
            (t.dep_ == "npadvmod" and t.pos_ in ("NOUN", "ADJ", "PROPN"))
            or (t.dep_ == "advmod" and t.pos_ == "ADJ")
        )
        and t.head.dep_ == "amod"
        and t.head.head.i == chunk.root.i
        and t.head.i == t.i + 1
        and not any(True for _ in t.children)
    }


def manner_adverbs(chunk: Any) -> set[int]:
    """Token indices of manner adverbs of a participle inside a chunk: "a NEATLY made bed",
    "a CASUALLY dressed man". The participle alone ("made bed") would make "neatly" and
    "messily" one graph; degree words ("very", "so") stay out, as for adjectives."""
    return {
        t.i
        for t in chunk
        if t.dep_ == "advmod"
        and t.pos_ == "ADV"
        and t.lower_ not in DEGREE_ADVERBS
        and t.head.tag_ == "VBN"
        and t.head.dep_ == "amod"
        and t.head.head.i == chunk.root.i
        and t.head.i == t.i + 1
        and not any(True for _ in t.children)
    }


def relational_attributes(relational: Any) -> list[Any]:
    """Descriptive adjectives of a relational noun: "smudged" in "the smudged side of a train".

    The side, edge or back belongs to the noun after "of", so the word describes that
    object (train [smudged]) rather than joining the predicate ("onto smudged side of").
    Spatial words ("the far side", "the upper left") stay in the predicate.
    """
    return [
        t
        for t in relational.lefts
        if t.dep_ in ("amod", "compound")
        and t.pos_ in ("ADJ", "VERB")
        and t.lower_ not in SPATIAL_ADJECTIVES
    ]
