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

The reverse misreading loses a whole object: the noun before a participle is tagged as a
``compound`` of it, as if it modified a verb ("A large white polar BEAR playing in water",
"in a double cushioned CHAIR relaxing"), and no noun chunk holds it. A compound cannot
modify a verb; the noun is the participle's subject and takes the verb's place where the
verb stands as an object ("on a PHONE sitting next to glasses": on the phone).
"""

from __future__ import annotations

from typing import Any

CLAUSE_HEAD_DEPS = frozenset(["ROOT", "advcl", "conj", "ccomp", "relcl"])
SINGULAR_DETERMINERS = frozenset(["a", "an", "the", "this", "that", "one"])
# Tags of words that can stand inside one noun phrase between a modifier and its head.
PHRASE_INNER_TAGS = frozenset(["JJ", "JJR", "JJS", "NN", "NNS", "NNP", "NNPS", "CD", "HYPH"])


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


def hung_subject(verb: Any) -> Any:
    """The noun the model hung on the verb right after it as a ``compound`` ("polar BEAR
    playing"), else None.

    A finite form counts only as the main verb of a caption its noun phrase opens ("The
    nomadic SHEEPHERD walks"): elsewhere it is mostly a plural noun the model tagged as a
    verb ("a collection of kitchen UTENSILS", "holding tennis RACQUETS").
    """
    if verb.pos_ != "VERB" or verb.dep_ == "compound" or verb.i == 0:
        return None
    before = verb.doc[verb.i - 1]
    participle = verb.tag_ in ("VBG", "VBN")
    if not participle and not (verb.dep_ == "ROOT" and before.left_edge.i == 0):
        return None
    if (
        before.dep_ == "compound"
        and before.head.i == verb.i
        and before.pos_ in ("NOUN", "PROPN")
        and not any(c.dep_ in ("det", "poss") for c in verb.children)
    ):
        return before
    return None


def misread_apposition(token: Any) -> Any:
    """The noun the model set beside ``token`` as its appositive when ``token`` only
    modifies it: "Some GLITTERY little stones", "A brown TEDDY bear", "a flat SCREEN TV".

    A real appositive is set off ("a man, a woman") or has its own article ("a black
    counter a sink"); one that follows its head at once, through adjectives and nouns only,
    is the head of one noun phrase. -ing forms ("a person cross-country SKIING") and verbs
    read as nouns ("a pole SPORTS street signs", a plural before the "appositive") are
    clauses, not phrases.
    """
    if token.pos_ not in ("NOUN", "PROPN") or token.tag_ == "NNS" or is_misread_verb(token):
        return None
    for child in token.rights:
        if (
            child.dep_ == "appos"
            and child.pos_ in ("NOUN", "PROPN")
            and child.left_edge.i == token.i + 1
            and not child.lower_.endswith("ing")
            and not any(c.dep_ in ("det", "poss") for c in child.children)
            and all(t.tag_ in PHRASE_INNER_TAGS for t in token.doc[token.i + 1 : child.i])
        ):
            return child
    return None
