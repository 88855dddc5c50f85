"""Aid gains are per-seed differences of two runs' results.json, on val and test."""

from __future__ import annotations

import json

import pytest

from components.evaluation.compare import load_row, paired_gain, table


def write_run(directory, model: str, val: list[float], test: list[float]) -> str:
    directory.mkdir()
    results = {
        "per_seed": {model: {"swap_att": test}},
        "val": {"per_seed": {model: {"swap_att": val}}},
    }
    (directory / "results.json").write_text(json.dumps(results))
    return str(directory)


def test_gain_is_paired_by_seed_and_split(tmp_path):
    base = load_row(f"base:{write_run(tmp_path / 'a', 'occlip', [0.9, 0.7], [1.0, 0.6])}:occlip")
    row = load_row(f"ablated:{write_run(tmp_path / 'b', 'occlip', [0.8, 0.7], [0.5, 0.5])}:occlip")
    assert paired_gain(row, base, "val", "swap_att") == pytest.approx([0.1, 0.0])
    assert paired_gain(row, base, "test", "swap_att") == pytest.approx([0.5, 0.1])
    lines = table([base, row], ["swap_att"], base)
    assert lines[2].startswith("| base | 0.800 +- 0.141 | 0.800 +- 0.283 | - | - |")
    assert lines[3].endswith("| 0.050 +- 0.071 | 0.300 +- 0.283 |")


def test_a_missing_model_or_run_is_one_line_error(tmp_path):
    directory = write_run(tmp_path / "a", "clip", [0.5], [0.5])
    with pytest.raises(SystemExit, match="has no model 'occlip'"):
        load_row(f"x:{directory}:occlip")
    with pytest.raises(SystemExit, match="no .*results.json"):
        load_row(f"x:{tmp_path / 'missing'}:clip")
