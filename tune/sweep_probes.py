"""Hyperparameter sweep of the binding-information probes: which probe is the estimate's?

    python tune/sweep_probes.py [--config F] [key=value ...]

The binding bits of arXiv 2606.03976 are test cross-entropies of trained probes, so they are
only as good as the probe's optimisation. This sweep searches lr x weight decay x epochs x
rank (quadratic families) or hidden width (dnn) over one or several probe families with Ray
Tune (components/probes/sweep.py). The driver extracts the frozen features ONCE (or reads an
existing features dir, ``features=DIR`` with train/, val/, test/); every trial memory-maps
them, fits the F-probe, then the O-probe with ``fit_probe``, reporting the O-probe's val CE
each epoch, so ASHA can stop bad trials on ``val_ce_o`` (``asha=true``). Each trial is an
MLflow run.

At the end the trial with the lowest val CE_O (at its best-val epoch) is selected, and its
test CE_O, CE_F (at the val-selected epochs) give B_O, B*, beta, beta* against the world's
exact test entropies; they go to results.json {"sweep_probes": {"best", "test", ...}},
report.md and an MLflow summary run. Trials are the restart unit: a rerun with the same
``out`` restores the experiment and reruns only unfinished trials, from their first epoch.
On a multi-node cluster ``out`` (or ``features``) must be on storage every node can read.
"""

from __future__ import annotations

import components.platform.help_gate  # noqa: F401  (answers --help before torch and Ray load)

# isort: split
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from components.models.backbone import BackboneConfig
from components.platform.cli import cli, run_pipeline
from components.platform.config import check, check_path, to_dict
from components.platform.outputs import check_manifest, config_manifest
from components.platform.runtime import init_ray
from components.platform.tracking import log_results, pipeline_run, write_outputs
from components.platform.tuning import SweepSettings, fit_sweep
from components.probes.binding_info import FitConfig
from components.probes.extract import ExtractConfig, load_features
from components.probes.inputs import SPLITS, ProbeScenes, sweep_features
from components.probes.sweep import (
    SWEPT_FIT,
    ProbeSpace,
    fit_target,
    probe_grid,
    resolve_layer,
    summarise,
    sweep_report,
)

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "sweep_probes.yaml"
REPRESENTATIONS = ("cls", "mean")


@dataclass
class SweepProbesConfig(SweepSettings):
    """Where features come from, the grid, and the settings every trial shares."""

    out: str = "outputs/sweep_probes"  # output folder: manifest, results, report
    name: str = "sweep_probes"  # Tune experiment name (trial folders under out/)
    experiment: str = "sweep_probes"  # MLflow experiment of the trials and the summary
    features: str = ""  # an extracted features dir (train/ val/ test/); empty = extract to out/
    # Used when features is empty (as in pipelines/probe_binding.py); data.data also names the
    # shard dir of given features when their meta's shard paths do not lead to its card.json.
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    data: ProbeScenes = field(default_factory=ProbeScenes)
    extract: ExtractConfig = field(
        default_factory=lambda: ExtractConfig(layers=[-1], patch_tokens=False)
    )
    layer: int = -1  # a 0-based block among the extracted ones; -1 = the last extracted
    representation: str = "cls"  # cls | mean (the attention family always reads tokens)
    space: ProbeSpace = field(default_factory=ProbeSpace)
    dnn_layers: int = 3  # the dnn family's depth (fixed; rank and hidden come from space)
    fit: FitConfig = field(default_factory=FitConfig)  # lr, weight_decay, epochs come from space
    asha_grace_epochs: int = 4  # epochs before ASHA may stop a trial

    def validate(self) -> None:
        super().validate()
        if self.backbone.checkpoint:
            check_path("backbone.checkpoint", self.backbone.checkpoint, "dir")
        check(
            self.representation in REPRESENTATIONS,
            "representation",
            self.representation,
            " | ".join(REPRESENTATIONS),
        )


def probe_trial(trial: dict[str, Any]) -> None:
    """One Tune trial: the F-probe silently, then the O-probe reporting every epoch.

    F goes first so that every report (each may be the last, under ASHA) carries both
    probes' val-selected test CEs.
    """
    from ray import tune

    torch.set_num_threads(max(1, int(trial["cpus"])))
    features = {split: load_features(Path(trial["features"]) / split)[0] for split in SPLITS}
    fit_f = fit_target("F", features, trial)

    def report(row: dict[str, float]) -> None:
        tune.report(
            {
                "epoch": row["epoch"],
                "train_ce_o": row["train_bits"],
                "val_ce_o": row["val_bits"],
                "best_val_ce_o": row["best_val_bits"],
                "best_epoch_o": row["best_epoch"],
                "selected_test_ce_o": row["best_test_bits"],
                "best_val_ce_f": fit_f.val_bits,
                "best_epoch_f": fit_f.best_epoch,
                "selected_test_ce_f": fit_f.test_bits,
            }
        )

    fit_target("O", features, trial, on_epoch=report)


def run_sweep(config: SweepProbesConfig, features: Path, layer: int, world) -> Any:
    """Build (or restore) the Tuner over the probe grid and fit it; returns the ResultGrid."""
    from ray import tune

    scheduler = None
    if config.asha:
        scheduler = tune.schedulers.ASHAScheduler(
            time_attr="training_iteration",  # one report per epoch
            max_t=max(config.space.epochs),
            grace_period=config.asha_grace_epochs,
        )
    sizes = list(world.space.sizes)
    param_space = {
        "probe": tune.grid_search(probe_grid(config.space)),
        "features": str(features),
        "layer": layer,
        "representation": config.representation,
        "groups": sizes if len(sizes) == 2 else None,
        "cpus": config.cpus_per_trial,
        "dnn_layers": config.dnn_layers,
        # the swept fields are left out so that MLflow params show only the values used
        "fit": {k: v for k, v in to_dict(config.fit).items() if k not in SWEPT_FIT},
    }
    return fit_sweep(
        probe_trial,
        param_space,
        config,
        metric="val_ce_o",
        mode="min",
        scheduler=scheduler,
    )


def main(argv: list[str]) -> dict[str, Any]:
    return run_pipeline(SweepProbesConfig, run, argv, DEFAULT_CONFIG)


def run(config: SweepProbesConfig) -> dict[str, Any]:
    """Run the sweep; write config.yaml, results.json and report.md to out/, log a summary."""
    import mlflow

    probe_grid(config.space)  # fail on a bad family before Ray starts
    # a changed grid must not restore the old experiment and overwrite its report
    check_manifest(config.out, config_manifest(config), config.overwrite)
    started = time.time()
    init_ray(num_cpus=os.cpu_count() or 1)  # one logical CPU = one concurrent trial
    features, world = sweep_features(
        config.features, config.data, config.out, config.backbone.source(), config.extract
    )
    if "shared_quadratic" in config.space.families and len(world.space.sizes) != 2:
        raise ValueError(f"shared_quadratic needs a 2-concept world; {world.name} has more")
    layer = resolve_layer(features, config.layer, config.space.families)
    grid = run_sweep(config, features, layer, world)
    rows = []
    for result in grid:
        if result.error is not None or not result.metrics:
            print(f"trial {result.path} failed: {result.error}")
            continue
        rows.append({**result.metrics, "probe": result.config["probe"]})
    summary = summarise(rows, world.entropies("test"))
    summary["layer"] = layer
    summary["features"] = str(features)
    summary["trials"] = {"finished": len(rows), "total": len(grid)}
    results = {"sweep_probes": summary}
    out = Path(config.out)
    report = sweep_report(summary, config.representation, config.asha, time.time() - started)
    with pipeline_run(config.experiment, f"{config.name}-summary", to_dict(config)):
        mlflow.log_params({f"best.{k}": v for k, v in summary["best"].items()})
        log_results({"test": summary["test"], "val": summary["val"]})
        write_outputs(out, config, results, report)
    print(report)
    return results


if __name__ == "__main__":
    cli(main)
