"""Noun-side reading of a spaCy Doc: which spans are objects, and what their words are.

spaCy's noun chunks plus the nouns its chunker skips; relational nouns ("to the LEFT of")
and quantity nouns ("a GROUP of people") that name no object of their own; hyphenated
names kept whole; coordinated nouns a relation reaches ("with a sandwich and a fork").
"""

from __future__ import annotations

from typing import Any

from components.parsing.spacy.lexicon import (
    BODY_PARTS,
    COLOURS,
    ORPHAN_DEPS,
    QUANTITY_NOUNS,
    RECIPROCALS,
    RELATIONAL_NOUNS,
    SHADOWED_DEPS,
    WEARING,
)
from components.parsing.spacy.misread_nouns import (
    hung_subject,
    misread_apposition,
    misread_compound,
)


def is_relational(token: Any) -> bool:
    """'left' in "to the left of X": a located-by noun whose own 'of' names the object.

    As a verb's object too ("kisses the TOP of her head", "sprays the INSIDE of a toilet":
    kisses top of head), except the words that are also body parts ("petting the HEAD of a
    sheep" names the head).
    """
    return (
        token.lower_ in RELATIONAL_NOUNS
        and (token.dep_ == "pobj" or token.dep_ == "dobj" and token.lower_ not in BODY_PARTS)
        and any(c.dep_ == "prep" and c.lower_ == "of" for c in token.children)
    )


def misread_part(token: Any) -> Any:
    """'back' in "on the VELVETY back of a sofa", where the model made the adjective the
    preposition's noun and "back" an adverb: the relational noun right after a bare
    determiner-and-word pobj, with an 'of' object of its own. "a blond mane inside of a
    coral" (a real noun with its own modifiers) is not one."""
    doc = token.doc
    if token.dep_ != "pobj" or token.i + 1 >= len(doc):
        return None
    part = doc[token.i + 1]
    if (
        part.lower_ in RELATIONAL_NOUNS
        and part.dep_ != "pobj"
        and [c.dep_ for c in token.children] == ["det"]
        and of_object(part) is not None
    ):
        return part
    return None


def is_misread_part(token: Any) -> bool:
    """Whether ``token`` is the relational noun of a misread "the velvety BACK of"."""
    return token.i > 0 and getattr(misread_part(token.doc[token.i - 1]), "i", None) == token.i


def of_object(token: Any) -> Any:
    for child in token.children:
        if child.dep_ == "prep" and child.lower_ == "of":
            for grandchild in child.children:
                if grandchild.dep_ == "pobj":
                    return grandchild
    return None


def folded_into(root: Any) -> Any:
    """The noun a chunk's root only describes, which takes its words as attributes: what a
    quantity noun counts ("a group of PEOPLE"), or the head the model set beside it as an
    appositive ("Some glittery little STONES"). None for a noun that is its own object."""
    if root.lower_ in QUANTITY_NOUNS:
        counted = of_object(root)
        counted = counted if counted is None else hung_subject(counted) or counted
        return counted if counted is not None and counted.pos_ in ("NOUN", "PROPN") else None
    return misread_apposition(root)


def conjuncts(token: Any) -> list[Any]:
    """The token and every noun coordinated with it ("cheese and tomatoes")."""
    out = [token]
    for child in token.children:
        if child.dep_ == "conj":
            out.extend(conjuncts(child))
    return out


def is_worn_colour(token: Any) -> bool:
    """'white' in "a girl in white" / "a boy wearing yellow": an attribute, not an object."""
    return (
        token.lower_ in COLOURS
        and token.dep_ in ("pobj", "dobj")
        and token.head.lower_ in WEARING
        and not any(c.dep_ in ("det", "amod", "compound", "conj") for c in token.children)
    )


def is_reciprocal(token: Any) -> bool:
    """'other' in "next to each other", 'another' in "near one another"."""
    return any(
        (c.lower_, token.lower_) in RECIPROCALS or (token.lower_, c.lower_) in RECIPROCALS
        for c in token.children
    )


def hyphen_start(token: Any) -> int:
    """First token of a hyphenated word ending at ``token`` ("t - shirt" -> the "t")."""
    doc, i = token.doc, token.i
    while (
        i >= 2
        and doc[i - 1].text == "-"
        and not doc[i - 1].whitespace_
        and not doc[i - 2].whitespace_
    ):
        i -= 2
    return i


def hyphenated_word(token: Any) -> str:
    """The whole hyphenated word a token is part of ("double-decked" for "decked"), or the
    token itself: GOLD_RULES.md keeps such modifiers whole, as the caption writes them."""
    doc, end = token.doc, token.i
    while (
        end + 2 < len(doc)
        and doc[end + 1].text == "-"
        and not doc[end].whitespace_
        and not doc[end + 1].whitespace_
    ):
        end += 2
    return doc[hyphen_start(token) : end + 1].text.lower()


def noun_name(token: Any) -> str:
    """The head noun as one word, hyphenated compounds kept whole ("t-shirt", not "t" + "shirt")."""
    return token.doc[hyphen_start(token) : token.i + 1].text.lower()


def inner_coordinate(chunk: Any) -> Any:
    """A noun inside a chunk that heads its own coordination: "red TILE and white cabinets".

    The small model parses "red tile and white cabinets" as one chunk with "tile" a modifier
    of "cabinets"; "tile" carrying a ``cc`` child shows it is a second object.
    """
    for token in chunk:
        if (
            token.i != chunk.root.i
            and token.pos_ in ("NOUN", "PROPN")
            and token.dep_ in ("nmod", "compound")
            and any(c.dep_ == "cc" and c.lower_ in ("and", "or") for c in token.children)
        ):
            return token
    return None


def chained_participle(chunk: Any) -> Any:
    """The verb inside an article-less chunk that is really a second clause.

    "a dog wearing blue vest catching red flying disc": the small model reads "blue vest
    catching red flying disc" as one noun phrase; a present participle in its middle (not
    first, not next to the head noun) starts "catching red flying disc".
    """
    if any(t.dep_ == "det" for t in chunk):
        return None
    for token in chunk[1:]:
        if (
            token.tag_ == "VBG"
            and token.dep_ == "amod"
            and token.i + 1 < chunk.root.i
            and token.doc[token.i - 1].pos_ in ("NOUN", "PROPN")  # not "two FLASHING devices"
        ):
            return token
    return None


def noun_phrases(doc: Any) -> list[Any]:
    """spaCy's noun chunks plus the nouns its chunker skips for their odd arc label.

    "A plate of food sitting on a table, it appears ...": "plate" gets the catch-all ``dep``
    label, which noun_chunks ignores, and the caption's first object would vanish.
    """
    chunks = []
    for chunk in doc.noun_chunks:
        head = misread_compound(chunk.root)  # "A white BATHROOM sink": one phrase, "sink"
        chunks.append(chunk if head is None else doc[chunk.start : head.i + 1])
    covered = {i for c in chunks for i in range(c.start, c.end)}
    for token in doc:
        if (
            token.i in covered
            or token.pos_ not in ("NOUN", "PROPN")
            or not (
                token.dep_ in ORPHAN_DEPS
                or token.dep_ == "compound"
                and getattr(hung_subject(token.head), "i", None) == token.i
                or token.dep_ in SHADOWED_DEPS
                and any(t.pos_ == "PRON" and t.i in covered for t in token.subtree)
            )
        ):
            continue
        left = [c.i for c in token.lefts if c.dep_ in ("det", "amod", "compound", "nummod", "nmod")]
        chunks.append(doc[min([*left, token.i]) : token.i + 1])
    return sorted(chunks, key=lambda c: c.start)


def distributed(token: Any) -> list[Any]:
    """Conjuncts a relation to ``token`` also reaches ("with a sandwich and a fork").

    A comma-separated conjunct with its own article starts a new clause in a listing caption
    ("a cube left of a sphere, a green cylinder, and no cone"): the relation stops there.
    """
    reached = [token]
    for conjunct in conjuncts(token)[1:]:
        has_article = any(
            c.dep_ == "det" and c.lower_ in ("a", "an", "the", "no") for c in conjunct.children
        )
        after_comma = any(t.text == "," for t in conjunct.doc[reached[-1].i : conjunct.i])
        if has_article and after_comma:
            break
        reached.append(conjunct)
    return reached
