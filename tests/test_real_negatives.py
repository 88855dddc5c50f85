"""Real-caption hard negatives: the caption's own tokens edited, the graph edited to match."""

from __future__ import annotations

import pytest

from components.data.real_negatives import KINDS, real_negatives
from components.parsing.scene_graph import SceneGraph


@pytest.fixture(scope="module")
def nlp():
    from components.parsing.spacy.parser import load_spacy

    try:
        return load_spacy()
    except OSError as err:
        pytest.skip(f"no spaCy English pipeline installed: {err}")


def negatives_of(nlp, caption: str):
    result = real_negatives(nlp(caption))
    return {n["kind"]: n for n in result.negatives}, result.missing


def changed_words(caption: str, negative: str) -> list[tuple[str, str]]:
    """(caption word, negative word) at every position where they differ (same length)."""
    a, b = caption.split(), negative.split()
    assert len(a) == len(b), (caption, negative)
    return [(x, y) for x, y in zip(a, b, strict=True) if x != y]


CAPTION = "A white cat sitting on a red sofa."


def test_swap_att_differs_in_exactly_the_two_swapped_attribute_words(nlp):
    negatives, _ = negatives_of(nlp, CAPTION)
    negative = negatives["swap_att"]
    assert negative["caption"] == "A red cat sitting on a white sofa."
    assert changed_words(CAPTION, negative["caption"]) == [("white", "red"), ("red", "white")]
    graph = SceneGraph.from_dict(negative["graph"])
    assert graph.triples() == [("red sitting cat", "sitting on", "white sofa")]


def test_swap_obj_differs_in_exactly_the_two_swapped_nouns(nlp):
    negatives, _ = negatives_of(nlp, CAPTION)
    negative = negatives["swap_obj"]
    assert changed_words(CAPTION, negative["caption"]) == [("cat", "sofa"), ("sofa.", "cat.")]
    graph = SceneGraph.from_dict(negative["graph"])
    assert graph.triples() == [("white sitting sofa", "sitting on", "red cat")]


def test_replace_rel_differs_in_exactly_the_spatial_word(nlp):
    negatives, _ = negatives_of(nlp, CAPTION)
    negative = negatives["replace_rel"]
    assert changed_words(CAPTION, negative["caption"]) == [("on", "under")]
    graph = SceneGraph.from_dict(negative["graph"])
    assert graph.triples() == [("white sitting cat", "sitting under", "red sofa")]


def test_negation_replaces_one_article_and_drops_the_objects_relations(nlp):
    negatives, _ = negatives_of(nlp, CAPTION)
    negative = negatives["negation"]
    assert changed_words(CAPTION, negative["caption"]) == [("a", "no")]
    graph = SceneGraph.from_dict(negative["graph"])
    assert [(o.phrase(), o.negated) for o in graph.objects] == [
        ("white sitting cat", False),  # "sitting": its state, kept without the relation
        ("red sofa", True),
    ]
    assert graph.relations == ()


def test_negatives_re_parse_to_the_graphs_they_claim(nlp):
    from components.parsing.spacy.parser import graph_from_doc

    negatives, _ = negatives_of(nlp, "a small dog to the left of a black car")
    for kind, negative in negatives.items():
        assert graph_from_doc(nlp(negative["caption"])).to_dict() == negative["graph"], kind


def test_a_caption_without_support_reports_each_missing_kind_with_a_reason(nlp):
    negatives, missing = negatives_of(nlp, "Two dogs playing.")
    assert set(negatives) | set(missing) == set(KINDS)
    assert missing["swap_att"] == "fewer than two objects with distinct adjectives"
    assert missing["swap_obj"] == "no relation between two differently named objects"
    assert missing["replace_rel"].startswith("no relation")


def test_unknown_kind_is_a_clear_error(nlp):
    with pytest.raises(ValueError, match="unknown negative kinds \\['swap_colour'\\]"):
        real_negatives(nlp("a cat"), kinds=("swap_colour",))
