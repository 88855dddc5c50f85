"""Parses the small spaCy model gets wrong at a noun chunk's boundary, repaired on a copy.

Most misreadings can be read around (misread_nouns.py, misparsed_modifiers.py): the
arcs are there, only a tag or a label is off. One cannot: when the model swallows a verb
into the noun phrase before it, spaCy's noun chunker puts the verb in the chunk as its
head, and no reading rule gets the subject back out:

    "A white plane FLIES in the cloudy sky"   flies  NOUN (NNS) ROOT, "plane" its compound
    "A woman TYPES on a laptop"              types  NOUN (NNS) ROOT, "woman" its compound

gave an object named "flies" (attributes white, plane) and "types". The phrase has a
singular article and a singular noun before a plural-looking head: an article cannot
determine a plural, so the -s word is a third-person verb and the noun its subject. The
repair re-labels those arcs on a copy of the Doc (the caller's Doc is not changed; a copy
costs microseconds and is made only when a repair applies), so every later rule and the
noun chunker read an ordinary clause.
"""

from __future__ import annotations

from typing import Any

CLAUSE_HEAD_DEPS = frozenset(["ROOT", "advcl", "conj", "ccomp", "relcl"])
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


def repaired(doc: Any) -> Any:
    """``doc`` itself, or a copy with every swallowed verb made the verb of its subject."""
    repairs = [(t.i, s.i) for t in doc if (s := swallowed_verb_subject(t)) is not None]
    if not repairs:
        return doc
    doc = doc.copy()
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
