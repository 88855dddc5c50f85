"""Metrics, the evaluate loop and reports, checked against hand-computed numbers.

`LookupScorer` is a test double of the Scorer protocol: images are solid colours, and a
table maps (colour name, text) to a score, so every expected number can be worked out
by hand.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from PIL import Image

from components.evaluation import (
    Benchmark,
    BenchmarkItem,
    ImageRef,
    accuracy_by_category,
    evaluate,
    get_benchmark,
    group_accuracy,
    macro_accuracy,
    markdown_table,
    plot_failures,
    results_dict,
    winoground_scores,
    write_report,
)
from components.evaluation.metrics import image_correct, text_correct
from components.models.scorer import Scorer

COLOURS = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "grey": (128, 128, 128),
}


class LookupScorer:
    """Scores from a table keyed by (colour name of the image, text); 0 when absent."""

    def __init__(self, table: dict[tuple[str, str], float], name: str = "lookup") -> None:
        self.table = table
        self.name = name
        self.calls: list[tuple[int, int]] = []

    @staticmethod
    def colour_of(image: Image.Image) -> str:
        pixel = image.convert("RGB").getpixel((0, 0))
        return min(
            COLOURS, key=lambda c: sum((a - b) ** 2 for a, b in zip(COLOURS[c], pixel, strict=True))
        )

    def score(self, images: Sequence[Image.Image], texts: Sequence[str]) -> torch.Tensor:
        self.calls.append((len(images), len(texts)))
        names = [self.colour_of(image) for image in images]
        return torch.tensor([[self.table.get((n, t), 0.0) for t in texts] for n in names])


def solid(colour: str) -> Image.Image:
    return Image.new("RGB", (6, 6), COLOURS[colour])


def choice_item(item_id: str, colour: str, texts, correct: int, category: str = "", **tags):
    return BenchmarkItem(item_id, (solid(colour),), tuple(texts), (correct,), category, tags)


def test_lookup_scorer_is_a_scorer():
    assert isinstance(LookupScorer({}), Scorer)


# -- pure metrics -----------------------------------------------------------------------
def test_tie_with_the_correct_caption_counts_as_wrong():
    assert not text_correct(torch.tensor([[0.5, 0.5]]), (0,))
    assert not text_correct(torch.tensor([[0.5, 0.5]]), (1,))
    assert text_correct(torch.tensor([[0.1, 0.2, 0.6]]), (2,))


WINOGROUND_TABLES = [
    # [image, caption]; text / image / group worked out by hand
    torch.tensor([[0.9, 0.1], [0.2, 0.8]]),  # text yes, image yes -> group yes
    torch.tensor([[0.6, 0.7], [0.2, 0.9]]),  # text no (0.6 < 0.7), image yes
    torch.tensor([[0.5, 0.4], [0.6, 0.7]]),  # text yes, image no (s(c0,i0)=.5 < s(c0,i1)=.6)
]


def test_winoground_scores_match_hand_computation():
    scores = winoground_scores(WINOGROUND_TABLES)
    assert scores == pytest.approx(
        {"text_score": 2 / 3, "image_score": 2 / 3, "group_score": 1 / 3}
    )


def test_image_correct_is_column_wise():
    assert image_correct(WINOGROUND_TABLES[1], (0, 1))
    assert not image_correct(WINOGROUND_TABLES[2], (0, 1))


def test_winoground_rejects_tables_that_are_not_two_by_two():
    with pytest.raises(ValueError, match=r"2x2"):
        winoground_scores([torch.zeros(2, 3)])


def test_macro_average_weights_categories_equally_and_skips_small_ones():
    per_category = accuracy_by_category([True, True, False, True, False], ["a", "a", "a", "b", "c"])
    assert per_category["a"].accuracy == pytest.approx(2 / 3) and per_category["a"].count == 3
    assert macro_accuracy(per_category) == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert macro_accuracy(per_category, min_count=2) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match=r"at least 4 items"):
        macro_accuracy(per_category, min_count=4)


def test_group_accuracy_needs_every_member_right():
    assert group_accuracy([True, True, True, False], ["p", "p", "q", "q"]) == 0.5


# -- evaluate ---------------------------------------------------------------------------
ARO_LIKE = Benchmark(
    "aro/toy",
    (
        choice_item("0", "red", ["false a", "true a"], 1, "on"),
        choice_item("1", "green", ["false b", "true b"], 1, "on"),
        choice_item("2", "blue", ["false c", "true c"], 1, "left of"),
        choice_item("3", "red", ["false d", "true d"], 1, "wearing"),
    ),
    headline="macro_accuracy",
)
ARO_TABLE = {
    ("red", "true a"): 0.9, ("red", "false a"): 0.1,  # right
    ("green", "true b"): 0.2, ("green", "false b"): 0.3,  # wrong
    ("blue", "true c"): 0.4, ("blue", "false c"): 0.4,  # tie: wrong
    ("red", "true d"): 0.7, ("red", "false d"): 0.6,  # right
}  # fmt: skip


def test_evaluate_accuracy_and_macro_match_hand_computation():
    result = evaluate(LookupScorer(ARO_TABLE), ARO_LIKE, progress=False)
    assert [r.text_correct for r in result.items] == [True, False, False, True]
    summary = result.summary()
    assert summary["accuracy"] == pytest.approx(2 / 4)
    # on: 1/2, left of: 0/1, wearing: 1/1 -> macro (0.5 + 0 + 1) / 3
    assert summary["macro_accuracy"] == pytest.approx(0.5)
    assert result.headline() == pytest.approx(0.5)
    assert [r.item.item_id for r in result.failures()] == ["1", "2"]


def test_evaluate_calls_score_per_item_with_only_its_candidates():
    scorer = LookupScorer(ARO_TABLE)
    evaluate(scorer, ARO_LIKE, batch_size=1, progress=False)
    assert scorer.calls == [(1, 2)] * 4


def test_batched_evaluate_gives_the_same_scores_in_fewer_calls():
    per_item = evaluate(LookupScorer(ARO_TABLE), ARO_LIKE, batch_size=1, progress=False)
    scorer = LookupScorer(ARO_TABLE)
    batched = evaluate(scorer, ARO_LIKE, batch_size=3, progress=False)
    assert scorer.calls == [(3, 6), (1, 2)]
    for a, b in zip(per_item.items, batched.items, strict=True):
        assert torch.equal(a.scores, b.scores)


def test_evaluate_scores_a_shared_image_and_shared_texts_once_per_call(tmp_path):
    solid("white").save(tmp_path / "shared.png")
    shared = ImageRef(tmp_path / "shared.png")
    items = tuple(BenchmarkItem(str(k), (shared,), ("x", f"y{k}"), (0,)) for k in range(3))
    scorer = LookupScorer({("white", "x"): 1.0})
    result = evaluate(scorer, Benchmark("shared", items), batch_size=3, progress=False)
    assert scorer.calls == [(1, 4)]  # one image; texts x, y0, y1, y2
    assert [r.text_correct for r in result.items] == [True, True, True]


def test_scorer_with_wrong_output_shape_is_named():
    class Broken(LookupScorer):
        def score(self, images, texts):
            return torch.zeros(len(texts), len(images) + 1)

    with pytest.raises(ValueError, match=r"scorer broken returned shape \(2, 2\) for 1 images x 2"):
        evaluate(Broken({}, name="broken"), ARO_LIKE, progress=False)


def test_whatsup_style_pair_and_set_accuracy():
    texts = ["right", "wrong"]
    benchmark = Benchmark(
        "whatsup/toy",
        tuple(
            choice_item(str(k), colour, texts, 0, prep, pair=pair, set="mug|plate")
            for k, (colour, prep, pair) in enumerate(
                [
                    ("red", "left", "h"),
                    ("red", "right", "h"),
                    ("blue", "on", "v"),
                    ("green", "under", "v"),
                ]
            )
        ),
        group_tags=("pair", "set"),
    )
    table = {("red", "right"): 1.0, ("blue", "right"): 1.0, ("green", "wrong"): 1.0}
    summary = evaluate(LookupScorer(table), benchmark, progress=False).summary()
    assert summary["accuracy"] == 0.75
    assert summary["pair_accuracy"] == 0.5  # left/right both right, on/under not
    assert summary["set_accuracy"] == 0.0


# -- end to end from files --------------------------------------------------------------
@pytest.fixture
def winoground_root(tmp_path: Path) -> Path:
    """Three examples whose score tables are WINOGROUND_TABLES under `winoground_scorer`."""
    colours = [("red", "green"), ("blue", "white"), ("black", "grey")]
    lines = []
    for k, pair in enumerate(colours):
        for j, colour in enumerate(pair):
            (tmp_path / "images").mkdir(exist_ok=True)
            solid(colour).save(tmp_path / "images" / f"ex_{k}_img_{j}.png")
        lines.append(
            json.dumps(
                {
                    "id": k,
                    "caption_0": f"c0 of {k}",
                    "caption_1": f"c1 of {k}",
                    "image_0": f"ex_{k}_img_0",
                    "image_1": f"ex_{k}_img_1",
                    "tag": "Object",
                    "secondary_tag": "",
                    "num_main_preds": 1,
                    "collapsed_tag": ["Object", "Relation", "Both"][k],
                }  # fmt: skip
            )
        )
    (tmp_path / "examples.jsonl").write_text("\n".join(lines))
    return tmp_path


def winoground_scorer() -> LookupScorer:
    colours = [("red", "green"), ("blue", "white"), ("black", "grey")]
    table = {}
    for k, (pair, scores) in enumerate(zip(colours, WINOGROUND_TABLES, strict=True)):
        for i, colour in enumerate(pair):
            for c in range(2):
                table[(colour, f"c{c} of {k}")] = float(scores[i, c])
    return LookupScorer(table)


def test_winoground_end_to_end_matches_hand_computation(winoground_root):
    benchmark = get_benchmark("winoground", winoground_root)
    result = evaluate(winoground_scorer(), benchmark, progress=False)
    summary = result.summary()
    assert summary["text_score"] == pytest.approx(2 / 3)
    assert summary["image_score"] == pytest.approx(2 / 3)
    assert summary["group_score"] == pytest.approx(1 / 3)
    assert result.headline() == pytest.approx(1 / 3)
    assert [r.item.item_id for r in result.failures()] == ["1", "2"]


def test_sugarcrepe_end_to_end_accuracy(tmp_path):
    data = {
        "2": {"filename": "a.jpg", "caption": "pos a", "negative_caption": "neg a"},
        "9": {"filename": "b.jpg", "caption": "pos b", "negative_caption": "neg b"},
        "11": {"filename": "c.jpg", "caption": "pos c", "negative_caption": "neg c"},
    }
    (tmp_path / "replace_rel.json").write_text(json.dumps(data))
    (tmp_path / "val2017").mkdir()
    for name, colour in [("a", "red"), ("b", "green"), ("c", "blue")]:
        solid(colour).save(tmp_path / "val2017" / f"{name}.jpg", quality=95)
    table = {("red", "pos a"): 0.3, ("green", "neg b"): 0.3, ("blue", "pos c"): 0.3}
    benchmark = get_benchmark("sugarcrepe/replace_rel", tmp_path)
    result = evaluate(LookupScorer(table), benchmark, batch_size=2, progress=False)
    assert result.summary() == {"n_items": 3.0, "accuracy": pytest.approx(2 / 3)}


# -- reports ----------------------------------------------------------------------------
def test_tables_pivot_headlines_and_csv_holds_every_number(tmp_path, winoground_root):
    aro = evaluate(LookupScorer(ARO_TABLE, name="clip"), ARO_LIKE, progress=False)
    wino = evaluate(
        winoground_scorer(), get_benchmark("winoground", winoground_root), progress=False
    )
    wino = type(wino)(wino.benchmark, "clip", wino.items)
    assert results_dict([aro, wino]) == {
        "clip": {"aro/toy": pytest.approx(0.5), "winoground": pytest.approx(1 / 3)}
    }
    table = markdown_table([aro, wino])
    assert "| aro/toy | macro_accuracy | 50.0 |" in table
    assert "| winoground | group_score | 33.3 |" in table
    paths = write_report([aro, wino], tmp_path / "out")
    rows = list(csv.DictReader(paths["tables"]["csv"].open()))
    assert [r["benchmark"] for r in rows] == ["aro/toy", "winoground"]
    assert float(rows[1]["image_score"]) == pytest.approx(2 / 3)
    categories = list(csv.DictReader(paths["tables"]["categories"].open()))
    assert {(r["category"], r["count"]) for r in categories if r["benchmark"] == "aro/toy"} == {
        ("left of", "1"),
        ("on", "2"),
        ("wearing", "1"),
    }
    assert sorted(p.name for p in paths["plots"]) == ["aro.png", "winoground.png"]
    assert len(paths["galleries"]) == 2
    for png in [*paths["plots"], *paths["galleries"]]:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_failure_gallery_is_skipped_when_nothing_failed(tmp_path):
    table = {("red", "true a"): 1.0, ("red", "true d"): 1.0, ("green", "true b"): 1.0,
             ("blue", "true c"): 1.0}  # fmt: skip
    result = evaluate(LookupScorer(table), ARO_LIKE, progress=False)
    assert plot_failures(result, tmp_path / "g.png") is None
    assert not (tmp_path / "g.png").exists()
