"""Bad benchmark items during evaluation (issue 22): counted skips, never an aborted run.

Images are real PNG files on disk, decoded by PIL through `ImageRef` exactly as the
loaders' items are; the scorer is the colour-lookup table of test_evaluation_metrics, so
every expected accuracy is worked out by hand.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from components.evaluation import Benchmark, BenchmarkItem, ImageRef, evaluate
from components.evaluation.metrics import DEGENERATE, UNREADABLE_IMAGE
from components.evaluation.report import summary_rows
from tests.test_evaluation_metrics import COLOURS, LookupScorer

TABLE = {("red", "a red cube"): 1.0, ("blue", "a blue cube"): 1.0}
TEXTS = ("a red cube", "a blue cube")


def png(path: Path, colour: str) -> Path:
    Image.new("RGB", (8, 8), COLOURS[colour]).save(path)
    return path


def item(item_id: str, path: Path, correct: int, texts: tuple[str, ...] = TEXTS) -> BenchmarkItem:
    return BenchmarkItem(item_id, (ImageRef(path),), texts, (correct,))


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    red, blue = png(tmp_path / "red.png", "red"), png(tmp_path / "blue.png", "blue")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(red.read_bytes()[:40])  # a PNG cut inside its first chunk
    not_an_image = tmp_path / "text.png"
    not_an_image.write_text("this is not an image\n")
    return {"red": red, "blue": blue, "truncated": truncated, "text": not_an_image}


def test_corrupt_benchmark_image_is_a_counted_skip_not_an_aborted_evaluation(images):
    benchmark = Benchmark(
        "faulty",
        (
            item("0", images["red"], 0),
            item("1", images["truncated"], 0),  # shares a batch with item 0
            item("2", images["blue"], 1),
            item("3", images["text"], 1),
            item("4", images["red"], 1),  # scored and wrong: red is "a red cube"
        ),
    )
    scorer = LookupScorer(TABLE)
    result = evaluate(scorer, benchmark, batch_size=2, progress=False)

    assert [r.item.item_id for r in result.items] == ["0", "2", "4"]
    assert [(s.item.item_id, s.reason) for s in result.skipped] == [
        ("1", UNREADABLE_IMAGE),
        ("3", UNREADABLE_IMAGE),
    ]
    assert str(images["truncated"]) in result.skipped[0].detail
    summary = result.summary()
    assert summary["n_items"] == 3.0
    assert summary["accuracy"] == pytest.approx(2 / 3)
    assert summary["n_skipped"] == 2.0
    assert summary[f"n_{UNREADABLE_IMAGE}"] == 2.0
    # The report's rows (results.csv) carry the count next to the accuracy.
    [row] = summary_rows([result])
    assert row["n_skipped"] == 2.0 and row["value"] == pytest.approx(2 / 3)


def test_benchmark_whose_every_image_is_corrupt_names_the_skips(images):
    benchmark = Benchmark("all_bad", (item("0", images["truncated"], 0),))
    result = evaluate(LookupScorer(TABLE), benchmark, progress=False)
    assert result.items == ()
    with pytest.raises(ValueError, match=r"no scored items \(1 skipped: \{'unreadable_image': 1\}"):
        result.summary()


def test_caption_equal_to_its_negative_is_a_counted_degenerate_item_not_a_tie(images):
    benchmark = Benchmark(
        "degenerate",
        (
            item("0", images["red"], 0),
            item("same", images["red"], 0, ("a red cube", "a red cube")),
            item("padded", images["blue"], 1, ("a blue cube ", "a blue cube")),
            item("2", images["blue"], 1),
        ),
    )
    scorer = LookupScorer(TABLE)
    result = evaluate(scorer, benchmark, batch_size=4, progress=False)

    assert [(s.item.item_id, s.reason) for s in result.skipped] == [
        ("same", DEGENERATE),
        ("padded", DEGENERATE),
    ]
    assert "equals candidate 1" in result.skipped[0].detail
    assert "equals candidate 0" in result.skipped[1].detail
    summary = result.summary()
    # Excluded from accuracy: a forced tie would otherwise count as wrong for every model.
    assert summary["accuracy"] == 1.0
    assert summary["n_items"] == 2.0
    assert summary[f"n_{DEGENERATE}"] == 2.0
    assert scorer.calls == [(2, 2)]  # the degenerate items were never scored
