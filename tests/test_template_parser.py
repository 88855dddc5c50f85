"""The template parser is the exact inverse of the synthetic grammar."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.data.synthetic import SceneRowBuilder, SyntheticSpec
from components.data.worlds import template_parser_options
from components.parsing.registry import get_parser
from components.parsing.scene_graph import SceneGraph
from components.parsing.template import TemplateParseError

BUILDERS = {
    (world, split): SceneRowBuilder(SyntheticSpec(world, 5, 0.6, 16), split)
    for world in ("clevr", "clevr_pairs")
    for split in ("train", "test_heldout")
}
PARSER = get_parser("template", **template_parser_options("clevr"))


@settings(max_examples=60, deadline=None)
@given(key=st.sampled_from(sorted(BUILDERS)), index=st.integers(0, 100_000))
def test_template_parser_recovers_every_caption_and_negative(key, index):
    row = BUILDERS[key].row(index)
    pairs = [(row["caption"], row["graph"])]
    for negative in row["negatives"]:
        pairs.append((negative["caption"], negative["graph"]))
        if negative["positive_caption"]:
            pairs.append((negative["positive_caption"], negative["positive_graph"]))
    for caption, graph in pairs:
        assert PARSER.parse(caption) == SceneGraph.from_dict(graph), caption


def test_fronted_relation_and_definite_reference():
    graph = PARSER.parse(
        "to the left of a large blue metal sphere is a small red rubber cube, "
        "and the small red rubber cube behind a large gray metal cylinder"
    )
    assert graph.node_phrases() == [
        "large blue metal sphere",
        "small red rubber cube",
        "large gray metal cylinder",
    ]
    assert graph.triples() == [
        ("small red rubber cube", "left of", "large blue metal sphere"),
        ("small red rubber cube", "behind", "large gray metal cylinder"),
    ]


@pytest.mark.parametrize(
    "caption,problem",
    [
        ("a dog chasing a cat", "'a dog chasing a cat': unknown object name"),
        ("a red cube near a blue sphere", "unknown attribute words"),
        ("the red cube", "refers to nothing"),
        ("", "empty caption"),
        ("a red cube, a blue sphere", "must start with 'and '"),
    ],
)
def test_out_of_grammar_caption_is_an_error_naming_it(caption, problem):
    with pytest.raises(TemplateParseError, match=problem):
        get_parser("template", **template_parser_options("clevr_pairs")).parse(caption)
