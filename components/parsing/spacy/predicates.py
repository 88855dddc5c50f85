"""Verb- and preposition-side reading of a spaCy Doc: relation phrases and their subjects.

Which words a predicate is made of ("sitting on", "picking up", "next to"), whether a
verb is negated or only a misparsed participle, and which nouns a verb's relations start
from (its subject, the noun it modifies, past clothing it was hung on by mistake).
"""

from __future__ import annotations

from typing import Any

from components.parsing.spacy.lexicon import (
    ANAPHORA,
    CLOTHING,
    COPULAS,
    HOLDING,
    RELATIVE_PRONOUNS,
    SUBJECT_DEPS,
)
from components.parsing.spacy.misparsed_modifiers import is_misparsed_participle
from components.parsing.spacy.misread_nouns import hung_subject, is_misread_verb
from components.parsing.spacy.nouns import conjuncts, is_relational, of_object

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


def absolute_pronoun(prep: Any, target: Any) -> Any:
    """The pronoun pointing back to the holder in an absolute "with" phrase, else None.

    "a plate WITH a salad on top of IT", "a man on a bench WITH a building behind HIM":
    the object is located by a phrase about the noun holding the phrase. The inner
    relation (salad on top of plate) says it; "plate with salad" would add a second, looser
    relation GOLD_RULES.md does not have.
    """
    if prep.lower_ != "with":
        return None
    for inner in target.children:
        located = next((g for g in inner.children if g.dep_ == "pobj"), None)
        if located is not None and is_relational(located):  # "in front of him"
            located = of_object(located)
        if (
            inner.dep_ == "prep"
            and inner.lower_ != "of"
            and located is not None
            and located.lower_ in ANAPHORA
        ):
            return located
    return None


def is_negated_predicate(word: Any) -> bool:
    """'not' on a verb or adjective: "a woman NOT wearing a skirt", "is NOT ready". A
    negated predicate states no relation and no attribute (absence is never presence)."""
    return any(c.dep_ == "neg" for c in word.children)


def is_verb(token: Any) -> bool:
    """A verb by tag, or a clause head the model tagged as a noun ("a clown STANDING near")."""
    return token.pos_ in ("VERB", "AUX") or is_misread_verb(token)


def partitive_whole(subject: Any) -> Any:
    """The noun a partitive subject picks from: "ALL of these men are using their phones"
    -> men; "one of them holding two apples" -> them. Other subjects are themselves."""
    if subject.pos_ in ("PRON", "DET", "NUM") and subject.lower_ not in ANAPHORA:
        whole = of_object(subject)
        if whole is not None and (whole.pos_ in ("NOUN", "PROPN") or whole.lower_ in ANAPHORA):
            return whole
    return subject


def governing_verb(verb: Any) -> Any:
    """The verb whose object a ``dobj`` is: ``verb`` itself, or for an attributive
    participle the model made a verb, none ("on SPARKLING sand") or the verb it was
    coordinated with ("wears orange shirts and STRIPED black caps": wears caps)."""
    if not is_misparsed_participle(verb):
        return verb
    return verb.head if verb.dep_ == "conj" and verb.head.pos_ == "VERB" else None


def bare_coordinated_verb(verb: Any) -> Any:
    """The verb ``verb`` is coordinated with when that one has no object or phrase of its
    own ("WALKING and skiing around the snow"): the phrase completes both."""
    head = verb.head
    if verb.dep_ != "conj" or head.pos_ != "VERB" or head.lower_ in COPULAS:
        return None
    relating = ("dobj", "dative", "attr", "oprd", "acomp", "prep", "agent", "xcomp", "ccomp")
    return None if any(c.dep_ in relating for c in head.children) else head


def is_misread_particle(token: Any) -> bool:
    """A "particle" with an object of its own is a preposition: "skiing DOWN a hill"."""
    return token.dep_ == "prt" and any(c.dep_ == "pobj" for c in token.children)


def is_particle(token: Any) -> bool:
    """A particle of its verb ("picking UP"), which joins the verb's predicate and state."""
    return token.dep_ == "prt" and not is_misread_particle(token)


def completes_verb(verb: Any, prep: Any) -> bool:
    """Whether a preposition belongs in the verb's predicate ("sitting on") or only locates.

    A verb's first prepositional phrase completes it ("sits on a bench"); once the verb has
    a direct object or an earlier phrase, a later one says where ("uses his computer on a
    park bench" -> man on bench, not "uses on"; "sits on a bench underneath trees" -> man
    underneath trees).
    """
    return not any(
        (c.dep_ in ("dobj", "dative") or (c.dep_ == "prep" and c.i < prep.i)) for c in verb.children
    )


def wearer_of(holder: Any) -> Any:
    """The noun a holding verb or a with/in phrase belongs to (its subject, or its head)."""
    if holder.pos_ in ("NOUN", "PROPN"):
        return holder
    subjects = [c for c in holder.children if c.dep_ in SUBJECT_DEPS]
    if subjects:
        return subjects[0]
    return holder.head if holder.dep_ in ("acl", "relcl") else None


def participle_subject(verb: Any) -> Any:
    """The noun a participle describes, past the object it was attached to by mistake.

    "a woman wearing headphones looking at some electronics": the small model hangs
    "looking" on "headphones", but clothing and held things do not look; "a man in a suit
    standing next to a board": "in" phrases (dress, place) do not stand either.
    """
    noun = verb.head
    for _ in range(3):  # a chain: man holding an umbrella wearing a hat standing ...
        holder = noun.head
        if noun.dep_ == "dobj" and holder.lower_ in HOLDING:
            owner = wearer_of(holder)
        elif noun.dep_ == "pobj" and (
            holder.lower_ == "in" or (holder.lower_ == "with" and noun.lower_ in CLOTHING)
        ):
            owner = wearer_of(holder.head)
        else:
            break
        if owner is None or owner.pos_ not in ("NOUN", "PROPN") or owner.i == noun.i:
            break
        noun = owner
    return noun


def verb_phrase(verb: Any) -> str:
    """The verb (with its particle: "picking up"), or "" for a copula."""
    if verb.lower_ in COPULAS:
        return ""
    particles = [c.lower_ for c in verb.children if is_particle(c)]
    return " ".join([verb.lower_, *particles])


def find_subjects(verb: Any, node_of: dict[int, int]) -> list[Any]:
    """Nouns a verb's relations start from: its nsubj, the noun it modifies, or attr;
    ``node_of`` (token index -> node) tells which fronted nouns are objects."""
    seen = set()
    while verb.i not in seen:
        seen.add(verb.i)
        subjects = [c for c in verb.children if c.dep_ in SUBJECT_DEPS]
        # "A polar BEAR playing in water"; not a gerund clause after a preposition
        # ("looking at laptop PLAYING video game": the man plays)
        hung = hung_subject(verb) if verb.dep_ != "pcomp" else None
        subjects = subjects or ([hung] if hung is not None else [])
        if verb.dep_ == "relcl" and all(s.lower_ in RELATIVE_PRONOUNS for s in subjects):
            subjects = [verb.head]  # "women that are laughing": the women laugh
        if subjects:
            subjects = [partitive_whole(s) for s in subjects]
            return [s for subject in subjects for s in conjuncts(subject)]
        if verb.dep_ in ("acl", "relcl") or verb.pos_ in ("NOUN", "PROPN"):
            return [participle_subject(verb)] if verb.dep_ in ("acl", "relcl") else [verb]
        attributes = [c for c in verb.children if c.dep_ == "attr"]
        if attributes and verb.lower_ in COPULAS:
            return attributes  # fronted: "to the left of the sphere is a cube"
        if verb.dep_ in ("conj", "advcl", "xcomp", "ccomp") and verb.head is not verb:
            verb = verb.head
            continue
        if verb.dep_ == "ROOT":
            # "Two barefoot women holding game controllers": the model made the
            # subject a noun modifier of the verb. Not before a past form: "a
            # blanket covered chair", "hand formed pots" are compound adjectives.
            fronted = [c for c in verb.lefts if c.dep_ == "npadvmod" and c.i in node_of]
            return fronted[:1] if verb.tag_ not in ("VBN", "VBD") else []
        verb = verb.head
    return []
