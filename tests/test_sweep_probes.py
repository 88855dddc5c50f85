"""The probe sweep: its grid, and a 2-trial Tune run selecting on val CE, tracked in MLflow."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from components.probes.sweep import ProbeSpace, probe_grid

SMOKE = Path(__file__).parents[1] / "tune" / "configs" / "smoke" / "sweep_probes.yaml"


def test_grid_crosses_each_family_only_with_the_knobs_it_reads():
    space = ProbeSpace(
        families=["linear", "quadratic", "dnn"],
        lr=[1e-3, 1e-2],
        weight_decay=[0.0],
        epochs=[5],
        rank=[4, 8],
        hidden=[16],
    )
    grid = probe_grid(space)
    by_family = {f: [c for c in grid if c["family"] == f] for f in space.families}
    assert [len(v) for v in by_family.values()] == [2, 4, 2]  # linear has no rank/hidden axis
    assert all(set(c) == {"family", "lr", "weight_decay", "epochs"} for c in by_family["linear"])
    assert {(c["lr"], c["rank"]) for c in by_family["quadratic"]} == {
        (1e-3, 4),
        (1e-3, 8),
        (1e-2, 4),
        (1e-2, 8),
    }
    assert all(c["hidden"] == 16 and "rank" not in c for c in by_family["dnn"])


def test_grid_rejects_an_unknown_family_by_name():
    with pytest.raises(ValueError, match="'mlp'"):
        probe_grid(ProbeSpace(families=["quadratic", "mlp"]))


@pytest.mark.slow
def test_two_trial_sweep_selects_the_lowest_val_ce_and_reports_its_test_bits(
    ray_cluster, mlflow_uri, tmp_path
):
    import mlflow

    from tune.sweep_probes import main

    out = tmp_path / "out"
    results = main(["--config", str(SMOKE), f"out={out}", f"data.root={tmp_path / 'data'}"])

    mlflow.set_tracking_uri(mlflow_uri)
    runs = mlflow.search_runs(experiment_names=["sweep_probes_smoke"])
    runs = runs[runs["tags.mlflow.runName"] != "sweep_probes_smoke-summary"]  # the trials
    assert len(runs) == 2 and set(runs["status"]) == {"FINISHED"}
    assert set(runs["params.probe/lr"]) == {"0.001", "0.01"}
    # one Tune result per epoch: what ASHA on val_ce_o needs
    assert (runs["metrics.training_iteration"] == 2).all()
    client = mlflow.MlflowClient()
    for run_id, best_val in zip(runs["run_id"], runs["metrics.best_val_ce_o"], strict=True):
        curve = [m.value for m in client.get_metric_history(run_id, "val_ce_o")]
        assert len(curve) == 2 and best_val == pytest.approx(min(curve))

    saved = json.loads((out / "results.json").read_text())["sweep_probes"]
    assert saved == json.loads(json.dumps(results["sweep_probes"]))
    lowest = runs.loc[runs["metrics.best_val_ce_o"].idxmin()]
    assert saved["best"] == {
        "family": "quadratic",
        "lr": float(lowest["params.probe/lr"]),
        "weight_decay": 0.0,
        "epochs": 2,
        "rank": 4,
    }
    assert saved["val"]["CE_O"] == pytest.approx(lowest["metrics.best_val_ce_o"])
    test = saved["test"]
    assert test["CE_O"] == pytest.approx(lowest["metrics.selected_test_ce_o"])
    assert test["CE_F"] == pytest.approx(lowest["metrics.selected_test_ce_f"])
    for key in ("CE_O", "CE_F", "B_O", "B_star", "beta", "beta_star"):
        assert math.isfinite(test[key]), key
    assert test["CE_O"] > 0 and test["CE_F"] > 0
    assert test["beta"] == pytest.approx((test["H_O"] - test["CE_O"]) / test["H_O"])
    assert test["B_star"] == pytest.approx(test["H_O_given_F"] - test["CE_O"] + test["CE_F"])
    assert [t["val_ce_o"] for t in saved["by_val_ce"]] == sorted(runs["metrics.best_val_ce_o"])

    summary = mlflow.search_runs(
        experiment_names=["sweep_probes_smoke"],
        filter_string="tags.mlflow.runName = 'sweep_probes_smoke-summary'",
    )
    assert len(summary) == 1
    assert summary["params.best.lr"][0] == lowest["params.probe/lr"]
    assert summary["metrics.test.B_star"][0] == pytest.approx(test["B_star"])
    assert (out / "report.md").exists() and (out / "config.yaml").exists()
