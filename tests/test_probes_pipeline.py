"""probe_binding end to end on the smoke config: Ray Data extraction, probes, outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from components.probes.extract import load_features

SMOKE = (
    Path(__file__).resolve().parents[1] / "pipelines" / "configs" / "smoke" / "probe_binding.yaml"
)


def test_smoke_pipeline_writes_aligned_features_results_and_plots(
    ray_cluster, mlflow_uri, tmp_path
):
    from pipelines.probe_binding import main

    out = tmp_path / "out"
    payload = main(["--config", str(SMOKE), f"data.root={tmp_path / 'data'}", f"out={out}"])

    results = json.loads((out / "results.json").read_text())
    layer = results["probes"]["layer3"]  # -1 of the 4-block tiny tower
    assert set(layer["binding"]) == {"cls/linear", "tokens/attention"}
    for scores in layer["binding"].values():
        # bits are finite and the ratios are the definitions applied to them
        assert np.isfinite(scores["CE_O"]) and scores["CE_O"] > 0
        assert abs(scores["beta"] - (scores["H_O"] - scores["CE_O"]) / scores["H_O"]) < 1e-9
    same = layer["same_object"]["quadratic"]
    assert 0.0 <= same["accuracy"] <= 1.0 and same["num_test_pairs"] > 0
    assert same["constant"] == max(same["p_same"], 1 - same["p_same"])
    assert results["entropies"]["H_O_given_F"] > 30  # balanced ColorShape: log2 N_18(6, 6)
    for name in (
        "config.yaml",
        "report.md",
        "plots/binding_bars.png",
        "plots/same_object_vs_layer.png",
        "plots/attention_layer3.png",
    ):
        assert (out / name).is_file(), name

    features, meta = load_features(out / "features" / "test")
    assert meta["rows"] == payload["rows"]["test"]
    assert features["layer3_patches"].shape == (meta["rows"], 64, 128)  # 8x8 patches of 8 px
    assert features["layer3_patches"].dtype == np.float16
    # Codes travel with their row: F = 1[O M > 0] for every row, whatever order Ray yields.
    objects = np.asarray(features["object_code"]).reshape(-1, 8, 8)
    expected_f = np.concatenate([objects.max(2), objects.max(1)], 1)
    assert np.array_equal(expected_f, features["feature_code"])
    # Patch objects are objects of that scene.
    present = np.asarray(features["patch_objects_foreground"])
    rows, cols = np.nonzero(present >= 0)
    assert np.all(np.asarray(features["object_code"])[rows, present[rows, cols]] == 1)
