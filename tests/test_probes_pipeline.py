"""probe_binding end to end on small configs: Ray Data extraction, controls, probes, outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from components.probes.extract import load_features

CONFIGS = Path(__file__).resolve().parents[1] / "pipelines" / "configs"
SMOKE = CONFIGS / "smoke" / "probe_binding.yaml"


@pytest.mark.slow
def test_smoke_pipeline_writes_controls_aligned_features_results_and_plots(
    ray_cluster, mlflow_uri, tmp_path
):
    from pipelines.probe_binding import main

    out = tmp_path / "out"
    payload = main(["--config", str(SMOKE), f"data.root={tmp_path / 'data'}", f"out={out}"])

    results = json.loads((out / "results.json").read_text())
    controls = results["controls"]
    assert set(controls) == {"zero", "feature_code", "object_code"}
    for control in controls.values():
        assert {"B_O", "beta", "B_star", "beta_star"} <= set(control)
    assert controls["object_code"]["beta"] >= 0.9  # the fit can read O off O
    assert controls["object_code"]["B_O"] > controls["feature_code"]["B_O"]
    assert controls["feature_code"]["CE_F"] < controls["zero"]["CE_F"]  # F is read off F
    layer = results["probes"]["layer3"]  # -1 of the 4-block tiny tower
    assert set(layer["binding"]) == {"cls/linear", "tokens/attention"}
    for scores in layer["binding"].values():
        # bits are finite and the ratios are the definitions applied to them
        assert np.isfinite(scores["CE_O"]) and scores["CE_O"] > 0
        assert abs(scores["beta"] - (scores["H_O"] - scores["CE_O"]) / scores["H_O"]) < 1e-9
        floor = controls["zero"]["CE_O"] - scores["CE_O"]
        assert scores["B_O_above_floor"] == pytest.approx(floor)
    assert set(layer["same_object"]) == {
        f"{labels}/{family}"
        for labels in ("foreground", "majority")
        for family in ("cosine", "quadratic")
    }
    same = layer["same_object"]["foreground/quadratic"]
    assert 0.0 <= same["accuracy"] <= 1.0 and same["num_test_pairs"] > 0
    assert same["constant"] == max(same["p_same"], 1 - same["p_same"])
    assert results["entropies"]["H_O_given_F"] > 30  # balanced ColorShape: log2 N_18(6, 6)
    assert payload["rows"] == {"train": 400, "val": 100, "test": 100}  # 4 : 1 : 1
    for name in (
        "config.yaml",
        "report.md",
        "plots/binding_bars.png",
        "plots/same_object_vs_layer.png",
        "plots/attention_layer3.png",
    ):
        assert (out / name).is_file(), name
    assert "object_code" in (out / "report.md").read_text()

    features, meta = load_features(out / "features" / "test")
    assert meta["rows"] == payload["rows"]["test"]
    assert features["layer3_patches"].shape == (meta["rows"], 64, 128)  # 8x8 patches of 8 px
    assert features["layer3_patches"].dtype == np.float16
    # Codes travel with their row: F = 1[O M > 0] for every row, whatever order Ray yields.
    objects = np.asarray(features["object_code"]).reshape(-1, 8, 8)
    expected_f = np.concatenate([objects.max(2), objects.max(1)], 1)
    assert np.array_equal(expected_f, features["feature_code"])
    # Row i is row i of the split's shards in file order (whatever order Ray yields), so a
    # rerun gives the same files and the same probe numbers.
    import pyarrow.parquet as pq

    shards = [pq.read_table(f, columns=["object_code"]) for f in meta["shards"]]
    in_file_order = np.concatenate([np.stack(t.column(0).to_pylist()) for t in shards])
    assert np.array_equal(in_file_order, features["object_code"])
    assert meta["row_order"] == "shards"
    # Patch objects are objects of that scene.
    present = np.asarray(features["patch_objects_foreground"])
    rows, cols = np.nonzero(present >= 0)
    assert np.all(np.asarray(features["object_code"])[rows, present[rows, cols]] == 1)

    # A broken fit (lr 0) cannot read O off O: the run stops instead of reporting bits.
    # The features extracted above are reused (same data, model and extraction config).
    from components.probes.controls import FitCannotMeasure

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "features").symlink_to(out / "features")
    with pytest.raises(FitCannotMeasure, match=r"this fit cannot measure binding \(object-code"):
        main(
            [
                "--config",
                str(SMOKE),
                f"data.root={tmp_path / 'data'}",
                f"out={broken}",
                "fit.lr=0",
                "fit_by_family.linear.lr=0",
            ]
        )
    assert not (broken / "results.json").exists()


@pytest.mark.slow
def test_clevr_runs_same_object_without_entropies(ray_cluster, mlflow_uri, tmp_path):
    """clevr has no exact entropies: binding families are skipped, IsSameObject runs on
    the mapped test split (test_seen) at every requested block, with its baselines."""
    from pipelines.probe_binding import main

    out = tmp_path / "out"
    main(
        [
            "--config",
            str(CONFIGS / "probe_binding_clevr.yaml"),
            f"data.root={tmp_path / 'data'}",
            f"out={out}",
            "data.num_scenes=60",
            "extract.layers=[0,3]",
            "pair_families=[cosine,quadratic]",
            "pair_fit.epochs=1",
        ]
    )
    results = json.loads((out / "results.json").read_text())
    assert results["controls"] is None and results["entropies"] is None
    assert not (out / "plots" / "binding_bars.png").exists()  # no bits, no empty bar chart
    assert (out / "plots" / "same_object_vs_layer.png").is_file()
    assert results["split_names"]["test"] == "test_seen"
    assert set(results["probes"]) == {"layer0", "layer3"}
    for layer in results["probes"].values():
        assert layer["binding"] == {}
        scores = layer["same_object"]["majority/quadratic"]
        assert {"constant", "same_color", "same_shape", "accuracy"} <= set(scores)
        assert scores["num_test_pairs"] > 0
        assert set(layer["same_object"]) == {
            f"{labels}/{family}"
            for labels in ("majority", "foreground")
            for family in ("cosine", "quadratic")
        }


def test_family_overrides_change_only_their_own_fit():
    from components.probes.layer_probes import family_fit
    from pipelines.probe_binding import ProbeBindingConfig

    config = ProbeBindingConfig(
        fit_by_family={"linear": {"lr": 0.1}}, pair_fit_by_family={"cosine": {"lr": 0.2}}
    )
    config.fit.lr, config.pair_fit.lr = 0.01, 0.001
    assert family_fit(config, "linear").lr == 0.1
    assert family_fit(config, "quadratic").lr == 0.01
    assert family_fit(config, "cosine", pairs=True).lr == 0.2
    assert family_fit(config, "quadratic", pairs=True).lr == 0.001
    bad = ProbeBindingConfig(pair_fit_by_family={"cosine": {"lrr": 1.0}})
    with pytest.raises(ValueError, match=r"pair_fit_by_family\.cosine: unknown keys \['lrr'\]"):
        family_fit(bad, "cosine", pairs=True)
