"""Parses the small spaCy model gets wrong at a noun chunk's boundary, repaired on a copy.

Most misreadings can be read around (misread_nouns.py, misparsed_modifiers.py): the
arcs are there, only a tag or a label is off. One cannot: when the model swallows a verb
into the noun phrase before it, spaCy's noun chunker puts the verb in the chunk as its
head, and no reading rule gets the subject back out:

    "A white plane FLIES in the cloudy sky"   flies  NOUN (NNS) ROOT, "plane" its compound
    "A woman TYPES on a laptop"              types  NOUN (NNS) ROOT, "woman" its compound

gave an object named "flies" (attributes white, plane) and "types". The phrase has a
singular article and a singular noun before a plural-looking head: an article cannot
determine a plural, so the -s word is a third-person verb and the noun its subject.

The other is a two-word name whose second word the model hangs on the first as an
adjective: "a red FIRE hydrant beside a sidewalk" (hydrant ADJ/ADV ``amod`` of "fire")
gave an object "fire" and lost every phrase on "hydrant", in 17 of the 61 SugarCrepe
captions that name one. Which names are nouns takes a vocabulary, not a rule: COCO's own two-word
category names, since COCO captions are what these parsers meet first.

Repairs re-label arcs on a copy of the Doc (the caller's Doc is not changed; a copy costs
microseconds and is made only when a repair applies), so every later rule and the noun
chunker read an ordinary clause or phrase.
"""

from __future__ import annotations

from typing import Any

from components.parsing.spacy.misread_nouns import CLAUSE_HEAD_DEPS

SINGULAR_ARTICLES = frozenset(["a", "an"])
# Tags of the words an article-opened phrase may hold before its head noun.
PREMODIFIER_TAGS = frozenset(["JJ", "JJR", "JJS", "NN", "NNP", "CD", "HYPH", "VBN", "VBG"])


def swallowed_verb_subject(token: Any) -> Any:
    """The subject noun when ``token`` is a verb the model swallowed into the noun phrase
    before it ("A white plane FLIES": plane), else None."""
    if (
        token.pos_ != "NOUN"
        or token.tag_ != "NNS"
        or not token.lower_.endswith("s")
        or token.dep_ not in CLAUSE_HEAD_DEPS
        or token.i < 2
    ):
        return None
    doc = token.doc
    article = doc[token.left_edge.i]
    subject = doc[token.i - 1]
    if (
        article.dep_ != "det"
        or article.head.i != token.i
        or article.lower_ not in SINGULAR_ARTICLES
        or subject.dep_ != "compound"
        or subject.head.i != token.i
        or subject.tag_ not in ("NN", "NNP")
        or subject.lower_.endswith("ing")  # "A woman COOKING spices": spices is the noun
        or not all(t.tag_ in PREMODIFIER_TAGS for t in doc[article.i + 1 : subject.i])
    ):
        return None
    return subject


# The two-word category names of COCO's 80 detection classes (head noun last).
COCO_TWO_WORD_NAMES = frozenset(
    [
        ("fire", "hydrant"), ("stop", "sign"), ("parking", "meter"), ("traffic", "light"),
        ("teddy", "bear"), ("hot", "dog"), ("cell", "phone"), ("tennis", "racket"),
        ("baseball", "bat"), ("baseball", "glove"), ("wine", "glass"), ("hair", "drier"),
        ("dining", "table"), ("potted", "plant"), ("sports", "ball"),
    ]
)  # fmt: skip
NAME_FIRST_WORDS = frozenset(first for first, _ in COCO_TWO_WORD_NAMES)


def inverted_name(first: Any) -> Any:
    """The head of a COCO two-word name when the model hung it on ``first`` ("FIRE
    hydrant": hydrant), else None."""
    doc = first.doc
    if first.lower_ not in NAME_FIRST_WORDS or first.i + 1 >= len(doc):
        return None
    head = doc[first.i + 1]
    singular = head.lower_[:-2] if head.lower_.endswith("es") else head.lower_.rstrip("s")
    names = {(first.lower_, head.lower_), (first.lower_, singular)}
    if head.head.i == first.i and names & COCO_TWO_WORD_NAMES:
        return head
    return None


def repaired(doc: Any) -> Any:
    """``doc`` itself, or a copy with every swallowed verb made the verb of its subject
    and every inverted two-word name headed by its last word."""
    repairs, names = [], []
    for token in doc:  # one pass: each Token built costs more than both checks
        if (subject := swallowed_verb_subject(token)) is not None:
            repairs.append((token.i, subject.i))
        if (head := inverted_name(token)) is not None:
            names.append((token.i, head.i))
    if not repairs and not names:
        return doc
    doc = doc.copy()
    for first_i, head_i in names:
        first, head = doc[first_i], doc[head_i]
        modifiers = [c for c in first.children if c.i != head_i]
        head.head = head if first.head.i == first_i else first.head  # takes its place
        head.dep_ = first.dep_
        for modifier in modifiers:
            modifier.head = head
        first.head, first.dep_ = head, "compound"
        head.pos_, head.tag_ = "NOUN", "NNS" if head.lower_.endswith("s") else "NN"
    for verb_i, subject_i in repairs:
        verb, subject = doc[verb_i], doc[subject_i]
        for modifier in [t for t in verb.lefts if t.i < subject_i]:
            modifier.head = subject  # "A", "white": the subject's, not the verb's
        for child in verb.rights:  # what the model hung on a noun, hung on a verb
            if child.dep_ == "appos":  # "sports several street SIGNS": its object
                child.dep_ = "dobj"
            elif child.dep_ in ("acl", "relcl"):  # "skis USING a sail", "stretches TO
                child.dep_ = "advcl"  # REACH high leaves": its clauses
        subject.dep_ = "nsubj"
        verb.pos_, verb.tag_ = "VERB", "VBZ"
    return doc
