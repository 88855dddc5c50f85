"""The LLM parser's second round of faults (issue 42): ungrounded attributes and relations,
invisible characters, and answers built to make the JSON scan slow. Each fault is a counted
reject naming the element, and the good caption in the same batch keeps its graph."""

from __future__ import annotations

import json
import time

import pytest

from components.parsing.llm_parser import (
    MAX_ANSWER_CHARS,
    REJECT_BAD_GRAPH,
    REJECT_NOT_JSON,
    REJECT_UNGROUNDED_ATTRIBUTE,
    REJECT_UNGROUNDED_RELATION,
    LLMParser,
    graph_from_answer,
)
from components.parsing.scene_graph import SceneGraph

RED_CAT = "a red cat on a sofa"
WHITE_CAT = "a white cat"
CAT = json.dumps({"objects": [{"name": "cat", "attributes": ["white"]}], "relations": []})


def caption_of(prompt: str) -> str:
    """The caption a prompt asks about (its last line but one holds it as a JSON string)."""
    return json.loads(prompt.rsplit("\nCaption: ", 1)[1].removesuffix("\nJSON:"))


class AnswersByCaption:
    """A batch backend (the parser's own backend protocol) answering each caption from a
    table, the same answer on every try; counts the prompts it got."""

    def __init__(self, answers: dict[str, str]):
        self.answers = answers
        self.prompts = 0

    def batch(self, prompts: list[str]) -> list[str]:
        self.prompts += len(prompts)
        return [self.answers[caption_of(p)] for p in prompts]


def answer(cat: list[str], sofa: list[str], predicate: str = "on", cat_name: str = "cat") -> str:
    """A well-formed answer for RED_CAT with the given attributes, predicate and name."""
    objects = [{"name": cat_name, "attributes": cat}, {"name": "sofa", "attributes": sofa}]
    return json.dumps({"objects": objects, "relations": [[0, predicate, 1]]})


def parse_with_good_neighbour(bad_answer: str, caption: str = RED_CAT, **options):
    """Parse ``caption`` answered by ``bad_answer`` beside a good caption; assert the good
    one's graph survives and return the bad one's result."""
    backend = AnswersByCaption({caption: bad_answer, WHITE_CAT: CAT})
    bad, good = LLMParser(backend=backend, **options).parse_results([caption, WHITE_CAT])
    assert good.reason is None
    assert good.graph == SceneGraph.build([("cat", ["white"])])
    return bad


@pytest.mark.parametrize(
    ("bad_answer", "reason", "detail"),
    [
        (
            answer(["red", "loaded"], []),
            REJECT_UNGROUNDED_ATTRIBUTE,
            "objects[0].attributes[1] 'loaded' does not occur in the caption",
        ),
        (
            answer(["red"], ["burning"]),
            REJECT_UNGROUNDED_ATTRIBUTE,
            "objects[1].attributes[0] 'burning' does not occur in the caption",
        ),
        (
            answer(["red"], [], predicate="shoots"),
            REJECT_UNGROUNDED_RELATION,
            "relations[0].predicate 'shoots' does not occur in the caption",
        ),
        (
            answer(["red"], [], predicate="on top of"),
            REJECT_UNGROUNDED_RELATION,
            "'on top of' does not occur in the caption (no 'top', 'of')",
        ),
    ],
)
def test_attributes_and_predicates_absent_from_the_caption_are_counted_rejects(
    bad_answer, reason, detail
):
    bad = parse_with_good_neighbour(bad_answer)
    assert bad.graph is None and bad.reason == reason
    assert detail in bad.detail
    assert bad.raw == bad_answer  # kept for inspection in the rejects file


def test_the_caption_words_in_another_inflection_ground_every_element():
    caption = "two cats sitting on a parked car"
    graph_answer = json.dumps(
        {
            "objects": [
                {"name": "cat", "attributes": ["two", "sitting"]},
                {"name": "cars", "attributes": ["parking"]},
            ],
            "relations": [[0, "sits on", 1], [0, "is on", 1]],
        }
    )
    graph = parse_with_good_neighbour(graph_answer, caption).graph
    assert graph.triples() == [
        ("two sitting cat", "sits on", "parking cars"),
        ("two sitting cat", "is on", "parking cars"),
    ]


def test_grounding_switched_off_accepts_words_the_caption_lacks():
    bad = parse_with_good_neighbour(
        answer(["red", "loaded"], ["burning"], predicate="shoots"), require_grounded=False
    )
    assert bad.reason is None
    assert bad.graph.triples() == [("red loaded cat", "shoots", "burning sofa")]


INVISIBLE = [
    "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff",  # zero-width
    "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",  # bidi embeddings and overrides
    "\u2066", "\u2067", "\u2068", "\u2069",  # bidi isolates
    "\x00", "\x07", "\x1b", "\x7f", "\x85",  # C0/C1 controls
]  # fmt: skip


@pytest.mark.parametrize("char", INVISIBLE, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize(
    ("field", "path"),
    [
        ("name", "objects[0].name"),
        ("attribute", "objects[0].attributes[0]"),
        ("predicate", "relations[0].predicate"),
    ],
)
def test_control_zero_width_and_bidi_characters_are_counted_rejects(char, field, path):
    bad_answer = {
        "name": answer(["red"], [], cat_name=f"c{char}at"),
        "attribute": answer([f"re{char}d"], []),
        "predicate": answer(["red"], [], predicate=f"o{char}n"),
    }[field]
    # Rejected even with grounding off: the text itself is unusable, whatever the caption.
    bad = parse_with_good_neighbour(bad_answer, require_grounded=False)
    assert bad.graph is None and bad.reason == REJECT_BAD_GRAPH
    assert bad.detail.startswith(f"{path} ")
    assert f"holds U+{ord(char):04X}" in bad.detail
    assert char not in bad.detail  # the reason itself is safe to print


@pytest.mark.parametrize(
    ("bad_answer", "path"),
    [
        (answer(["red"], [], cat_name="!!!"), "objects[0].name '!!!'"),
        (answer(["red", "..."], []), "objects[0].attributes[1] '...'"),
        (answer(["red"], [], predicate="->"), "relations[0].predicate '->'"),
    ],
)
def test_an_element_with_no_letter_or_digit_is_a_counted_reject(bad_answer, path):
    bad = parse_with_good_neighbour(bad_answer, require_grounded=False)
    assert bad.reason == REJECT_BAD_GRAPH
    assert bad.detail == f"{path} has no letter or digit"


@pytest.mark.parametrize(
    "flood",
    [
        "{" * 8_000,  # 13 s when the scan restarted at every brace
        '{""' * 87_000,  # 261 KB, just under the cap, a brace or a string every 1.5 characters
        "Sure! " + '{"objects": [' + '{"name": "cat"}, ' * 60_000,  # 1 MB, cut off
        "{" * (1 << 20),  # 1 MB
    ],
    ids=["8000_braces", "261KB_dense", "1MB_cut_off", "1MB_braces"],
)
def test_a_brace_flood_is_a_counted_reject_well_under_a_second(flood):
    started = time.perf_counter()
    bad = parse_with_good_neighbour(flood, "a cat")
    seconds = time.perf_counter() - started  # both tries of the bad caption, and the good one
    assert bad.graph is None and bad.reason == REJECT_NOT_JSON
    assert seconds < 1.0, f"{seconds:.2f} s"
    if len(flood) > MAX_ANSWER_CHARS:
        assert bad.detail == (
            f"answer is {len(flood)} characters, more than the {MAX_ANSWER_CHARS} a scene "
            "graph needs"
        )
    else:
        assert bad.detail == "answer holds no JSON object"


def test_an_escaped_quote_inside_a_name_does_not_end_the_string():
    """The old scan ended a string at \\" and so read '}' inside a name as the object's end."""
    text = 'Here: {"objects": [{"name": "cat \\"}\\" toy"}], "relations": []} done'
    assert graph_from_answer(text).objects[0].name == 'cat "}" toy'
