"""Clause heads the small spaCy model tags as nouns, read back by structure.

en_core_web_sm often keeps the right arcs but the wrong tag on a caption's main word:

    "A clown STANDING near an elephant"   standing  NOUN ROOT, "clown" its nsubj
    "A zebra STANDING under a tree"       standing  NOUN acl of "zebra"
    "A couple WAITS in a reception area"  waits     NOUN (NNS) ROOT, "couple" its nsubj
    "A white bathroom SINK sitting ..."   sink      NOUN ROOT, "bathroom" its nsubj

A noun with a subject is a contradiction the model leaves for the reader. In the first two
the word is a verb: every phrase hung on it was lost (no relation starts at a noun that is
no object), so "standing near" and "standing behind" gave one graph. In the third the
"subject" is a compound: "bathroom" is a kind of sink, and "sink" was no object at all.
Which reading holds is told by form, not by word lists: an -ing form, or a plural -s form
after a singular subject with its article ("a couple waits", not "two teddy bears"), is a
verb; any other noun directly after its "subject" is the head of one noun phrase.
"""

from __future__ import annotations

from typing import Any

CLAUSE_HEAD_DEPS = frozenset(["ROOT", "advcl", "conj", "ccomp", "relcl"])
SINGULAR_DETERMINERS = frozenset(["a", "an", "the", "this", "that", "one"])


def _subject(token: Any) -> Any:
    return next((c for c in token.children if c.dep_ == "nsubj"), None)


def is_misread_verb(token: Any) -> bool:
    """Whether a NOUN-tagged clause head with a noun subject, or a NOUN-tagged clausal
    modifier (``acl``), is a verb by its form."""
    if token.pos_ != "NOUN":
        return False
    if token.dep_ == "acl":  # "a zebra STANDING under a tree": a clause on its noun
        return token.lower_.endswith("ing")
    if token.dep_ not in CLAUSE_HEAD_DEPS:
        return False
    subject = _subject(token)
    if subject is None or subject.pos_ not in ("NOUN", "PROPN") or subject.i > token.i:
        return False
    if token.lower_.endswith("ing"):
        return True
    return (
        token.tag_ == "NNS"
        and subject.tag_ in ("NN", "NNP")
        and any(c.dep_ == "det" and c.lower_ in SINGULAR_DETERMINERS for c in subject.children)
    )


def misread_compound(chunk_root: Any) -> Any:
    """The head noun a chunk's root is the "subject" of, when it is really a compound of it
    ("A white BATHROOM sink": sink), else None."""
    head = chunk_root.head
    if (
        chunk_root.dep_ == "nsubj"
        and chunk_root.pos_ in ("NOUN", "PROPN")
        and head.dep_ == "ROOT"
        and head.pos_ == "NOUN"
        and head.i == chunk_root.i + 1
        and not is_misread_verb(head)
    ):
        return head
    return None
