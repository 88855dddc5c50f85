"""The spaCy rules' word lists: which words locate, count, negate, point back or describe.

Closed lists, most with a caption that shows why: a list, not a model, decides these words
so a rule change is a diff here. tests/data/GOLD_RULES.md is what they are judged against.
"""

from __future__ import annotations

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
BODY_PARTS = frozenset(["head", "foot", "back"])  # relational nouns that also name a part
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
# A bare colour after "in" or a wearing verb describes the wearer: "a girl in white".
COLOURS = frozenset(
    [
        "white",
        "black",
        "red",
        "blue",
        "green",
        "yellow",
        "orange",
        "purple",
        "pink",
        "brown",
        "gray",
        "grey",
        "silver",
        "gold",
        "tan",
        "beige",
        "maroon",
        "navy",
    ]
)
WEARING = frozenset(["in", "wearing", "wears", "wear", "dressed", "clad"])
# Pronouns that point back to an object already named: "a sink with a cabinet under it".
ANAPHORA = frozenset(["it", "them", "him", "her", "he", "she", "itself", "themselves"])
ATTRIBUTE_DEPS = frozenset(["amod", "compound", "nummod", "conj", "nmod", "quantmod"])
NOT_ATTRIBUTES = frozenset(["other", "another", "more"])  # GOLD_RULES.md: not attributes
SKIPPED_ATTRIBUTE_POS = frozenset(["DET", "CCONJ", "PUNCT", "PART", "PRON", "ADP", "SCONJ"])
SUBJECT_DEPS = ("nsubj", "nsubjpass")
# Arcs of a verb that heads its own clause (one inside a noun phrase is ``amod``: a word
# of that phrase already) and of what makes a verb transitive: those give no state.
CLAUSE_DEPS = frozenset(
    ["ROOT", "acl", "relcl", "advcl", "conj", "pcomp", "xcomp", "ccomp", "dep", "parataxis"]
)
COMPLEMENT_DEPS = frozenset(["dobj", "dative", "oprd", "ccomp", "xcomp", "attr", "acomp"])
RELATIVE_PRONOUNS = frozenset(["that", "who", "which", "whom"])
ORPHAN_DEPS = frozenset(["dep", "npadvmod", "appos", "advcl"])  # arcs noun_chunks skips
# Arcs noun_chunks does take, but skips when a pronoun chunk overlaps the noun's left edge:
# "Some spotted horse running" ("Some" a PRON subject of "spotted") loses the horse.
SHADOWED_DEPS = frozenset(["ROOT", "nsubj", "nsubjpass", "dobj", "pobj", "attr", "conj"])
# State adjectives that follow their noun ("a boy ASLEEP on a bed", "its mouth OPEN"):
# attributes of it, as a predicate adjective is ("the door is open" -> door [open]).
POSTNOMINAL_STATES = frozenset(
    [
        "asleep", "awake", "alive", "afloat", "ablaze", "ajar", "open", "closed", "shut",
        "empty", "upright", "unattended", "wet", "dry", "bare", "naked", "barefoot",
    ]
)  # fmt: skip
# Pronouns that name a new referent rather than point back: objects, as GOLD_RULES.md has
# them ("a man drinking SOMETHING from a red bottle", "SOMEONE is cooking stir fry", "on
# the back of ANOTHER"); "one another" stays a reciprocal.
INDEFINITE_PRONOUNS = frozenset(
    ["someone", "somebody", "something", "everyone", "everybody", "anyone", "anybody", "another"]
)
# "next to EACH OTHER", "near ONE ANOTHER": the relation holds between the subject's members.
RECIPROCALS = frozenset([("each", "other"), ("one", "another")])

# Verbs whose object cannot act: a participle after it belongs to the verb's subject.
HOLDING = frozenset(["wearing", "holding", "carrying", "dressed", "covered"])
# Things worn or held "with": "a girl with a green jacket eating pizza" -> the girl eats.
CLOTHING = frozenset(
    [
        "jacket", "shirt", "t-shirt", "hat", "cap", "helmet", "dress", "suit", "coat", "tie",
        "glasses", "sunglasses", "goggles", "uniform", "scarf", "vest", "jeans", "shorts",
        "pants", "sweater", "hoodie", "jersey", "backpack", "umbrella", "bag", "gloves",
        "boots", "shoes", "skirt", "outfit", "costume", "apron", "wetsuit", "headphones",
    ]
)  # fmt: skip
