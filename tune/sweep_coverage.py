"""Coverage sweep of controlled dual encoders: where does binding generalise?

    python tune/sweep_coverage.py [--config F] [key=value ...]

Reproduces the coverage-threshold experiment of arXiv 2605.31503 with Ray Tune: a grid
over coverage x world size (C, V) x seed, one trial per cell, each trial an MLflow run
(params, eval curves, final metrics). Trials checkpoint at every evaluation, so a rerun
with the same ``out`` restores the experiment (``resume=true``) and continues unfinished
trials. It ends with held-out object accuracy vs coverage, one line per world, and the
estimated threshold: the interpolated coverage at which held-out object accuracy crosses
the midpoint between chance and 1. Each trial also analyses the binding function of its
selected model (additive R^2, and held-out object recognition through approximators fitted
on seen-object scenes), so simplicity can be read against generalisation.
The defaults are a CPU-sized grid (2 worlds x 5 coverages, 1 CPU per trial); a cluster
run changes only ``cpus_per_trial``/``gpus_per_trial``, the grid and the model size.
"""

from __future__ import annotations

import components.platform.help_gate  # noqa: F401  (answers --help before torch and Ray load)

# isort: split
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from components.data.controlled_world import TokenWorld
from components.evaluation.coverage_sweep import coverage_tables, plot_coverage, summarise
from components.models.controlled.controlled import ControlledDualEncoder, ControlledModelConfig
from components.models.controlled.controlled_pixels import pixel_world
from components.platform.cli import cli, run_pipeline
from components.platform.config import check, to_dict
from components.platform.outputs import check_manifest, config_manifest
from components.platform.runtime import init_ray
from components.platform.tracking import log_outputs, log_results, pipeline_run, write_outputs
from components.platform.tuning import SweepSettings, fit_sweep
from components.probes.complexity import ComplexityConfig, controlled_binding_function
from components.training.controlled_trainer import (
    ControlledTrainConfig,
    object_splits,
    train_controlled,
)

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "sweep_coverage.yaml"
WORLD_NAME = re.compile(r"^C(\d+)V(\d+)$")


@dataclass
class SweepCoverageConfig(SweepSettings):
    """Grid, per-trial resources and the model/training settings shared by all trials."""

    out: str = "outputs/sweep_coverage"  # output folder: manifest, results, coverage.png, report
    name: str = "sweep_coverage"  # Tune experiment name (trial folders under out/)
    experiment: str = "sweep_coverage"  # MLflow experiment of the trials and the summary
    # token worlds CxVy: C concepts with V values each
    worlds: list[str] = field(default_factory=lambda: ["C3V4", "C4V3"])
    # grid axis: fraction of objects seen in training
    coverages: list[float] = field(default_factory=lambda: [0.2, 0.35, 0.5, 0.65, 0.8])
    seeds: list[int] = field(default_factory=lambda: [0])  # grid axis: seeds per (world, coverage)
    max_objects: int = 2  # objects per scene
    model: ControlledModelConfig = field(default_factory=ControlledModelConfig)
    train: ControlledTrainConfig = field(default_factory=ControlledTrainConfig)
    # The paper's diagnostic pair (generalising models fit the global product); 500 epochs
    # keep it under 20 s a trial. Add "mlp" (widths in mlp_widths) for the full sweep.
    binding_function: ComplexityConfig = field(
        default_factory=lambda: ComplexityConfig(
            families=("additive", "global_product"), epochs=500
        )
    )
    asha_grace_evals: int = 4  # evaluations before ASHA may stop a trial

    def validate(self) -> None:
        super().validate()
        check(bool(self.worlds), "worlds", self.worlds, "at least one world")
        bad = [c for c in self.coverages if not 0.0 < c <= 1.0]
        check(bool(self.coverages) and not bad, "coverages", self.coverages, "fractions in (0, 1]")
        check(bool(self.seeds), "seeds", self.seeds, "at least one seed")


def parse_world(name: str, max_objects: int) -> TokenWorld:
    """``C2V10`` -> TokenWorld(2, 10, max_objects); names double as result keys."""
    match = WORLD_NAME.match(name)
    if not match:
        raise ValueError(f"world {name!r} is not of the form C<concepts>V<values>, e.g. C2V10")
    return TokenWorld(int(match[1]), int(match[2]), max_objects)


def coverage_trial(trial: dict[str, Any]) -> None:
    """One Tune trial: train at one (world, coverage, seed), report and checkpoint each eval."""
    from ray import tune

    torch.set_num_threads(max(1, int(trial["cpus"])))
    world = parse_world(trial["world"], trial["max_objects"])
    train_config = ControlledTrainConfig(**{**trial["train"], "seed": trial["seed"]})
    checkpoint = tune.get_checkpoint()
    resume_state = None
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            resume_state = torch.load(Path(folder) / "state.pt", weights_only=True)

    def report(metrics: dict[str, float], state: dict[str, Any]) -> None:
        best = state["best"]  # test numbers at the step validation picked
        selected = {
            "selected_step": best["step"],
            "selected_val_object_acc": best["val_object_acc"],
            "selected_test_object_acc": best["test_object_acc"],
            "selected_test_concept_acc": best["test_concept_acc"],
            "selected_test_object_acc_2obj": best["test_object_acc_2obj"],
            "selected_seen_object_acc": best["seen_object_acc"],
        }
        if state["step"] == train_config.steps:  # once, on the model validation selected
            selected.update(selected_binding_function(world, trial, train_config, state))
        with tempfile.TemporaryDirectory() as folder:
            torch.save(state, Path(folder) / "state.pt")
            tune.report({**metrics, **selected}, checkpoint=tune.Checkpoint.from_directory(folder))

    train_controlled(
        world,
        trial["coverage"],
        ControlledModelConfig(**trial["model"]),
        train_config,
        on_eval=report,
        resume_state=resume_state,
    )


def selected_binding_function(
    world: TokenWorld,
    trial: dict[str, Any],
    train_config: ControlledTrainConfig,
    state: dict[str, Any],
) -> dict[str, float]:
    """Binding-function metrics of the checkpoint validation picked, keys ``selected_bf_*``.

    Approximators are fitted on scenes of the trial's own seen objects, so their held-out
    scores ask the same question as the trial's held-out accuracy.
    """
    model = ControlledDualEncoder(world, ControlledModelConfig(**trial["model"]))
    model.load_state_dict(state["best_model"])
    seen = object_splits(
        world,
        trial["coverage"],
        train_config.seed,
        train_config.val_fraction,
        train_config.cover_values,
    ).seen
    metrics = controlled_binding_function(
        model, seen.tolist(), ComplexityConfig(**trial["binding_function"])
    )
    return {f"selected_bf_{key}": value for key, value in metrics.items()}


def report_text(summary: dict[str, Any], config: SweepCoverageConfig, seconds: float) -> str:
    """Markdown: what was swept, then one row per (world, coverage) and the thresholds."""
    lines = [
        f"# Coverage sweep (controlled dual encoders, {config.model.scene_input} scenes)",
        "",
        f"Worlds {config.worlds}, coverages {config.coverages}, seeds {config.seeds}; "
        f"{config.train.steps} steps, model d={config.model.d_model} x {config.model.num_layers} "
        f"layers, scene encoder on {config.model.scene_input}; wall time {seconds / 60:.1f} min. Test metrics at the step picked on validation "
        "held-out objects; candidates are all objects / all concept tokens.",
        "",
        *coverage_tables(summary),
    ]
    return "\n".join(lines) + "\n"


def run_sweep(config: SweepCoverageConfig) -> Any:
    """Build (or restore) the Tuner over the grid and fit it; returns the ResultGrid."""
    from ray import tune

    scheduler = None
    if config.asha:
        scheduler = tune.schedulers.ASHAScheduler(
            time_attr="training_iteration",
            max_t=max(1, config.train.steps // config.train.eval_every),
            grace_period=config.asha_grace_evals,
        )
    param_space = {
        "world": tune.grid_search(list(config.worlds)),
        "coverage": tune.grid_search(list(config.coverages)),
        "seed": tune.grid_search(list(config.seeds)),
        "max_objects": config.max_objects,
        "cpus": config.cpus_per_trial,
        "model": to_dict(config.model),
        "train": to_dict(config.train),
        "binding_function": to_dict(config.binding_function),
    }
    return fit_sweep(
        coverage_trial,
        param_space,
        config,
        metric="val_object_acc",
        mode="max",
        scheduler=scheduler,
        checkpoints_to_keep=1,
    )


def main(argv: list[str]) -> dict[str, Any]:
    return run_pipeline(SweepCoverageConfig, run, argv, DEFAULT_CONFIG)


def run(config: SweepCoverageConfig) -> dict[str, Any]:
    """Run the sweep and write config.yaml, results.json, coverage.png and report.md to out/."""
    # a changed grid must not restore the old experiment and overwrite its report
    check_manifest(config.out, config_manifest(config), config.overwrite)
    for world in config.worlds:  # fail on a bad name or an undrawable world before Ray starts
        token_world = parse_world(world, config.max_objects)
        if config.model.scene_input == "pixels":
            pixel_world(token_world)
    started = time.time()
    init_ray(num_cpus=os.cpu_count() or 1)  # one logical CPU = one concurrent trial
    grid = run_sweep(config)
    rows = []
    for result in grid:
        if result.error is not None or not result.metrics:
            print(f"trial {result.path} failed: {result.error}")
            continue
        rows.append(
            {
                **result.metrics,
                "world": result.config["world"],
                "coverage": result.config["coverage"],
            }
        )
    results = summarise(rows, config.worlds, config.coverages)
    results["coverage"]["trials"] = {"finished": len(rows), "total": len(grid)}
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    plot_coverage(results["coverage"], out / "coverage.png")
    report = report_text(results["coverage"], config, time.time() - started)
    with pipeline_run(config.experiment, f"{config.name}-summary", to_dict(config)):
        write_outputs(out, config, results, report)
        log_results(results)
        log_outputs(out)  # report and plots; trial checkpoints stay in out/tune
    print(report)
    return results


if __name__ == "__main__":
    cli(main)
