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

import components.help_gate  # noqa: F401  (answers --help before torch and Ray load)

# isort: split
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from components.config import check, cli, run_pipeline, to_dict
from components.models.controlled import ControlledDualEncoder, ControlledModelConfig
from components.models.controlled_pixels import pixel_world
from components.models.controlled_world import TokenWorld
from components.outputs import check_manifest, config_manifest
from components.probes.complexity import ComplexityConfig, controlled_binding_function
from components.runtime import init_ray
from components.tracking import log_outputs, log_results, pipeline_run, write_outputs
from components.training.controlled_trainer import (
    ControlledTrainConfig,
    object_splits,
    train_controlled,
)
from components.tuning import fit_sweep

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "sweep_coverage.yaml"
WORLD_NAME = re.compile(r"^C(\d+)V(\d+)$")


@dataclass
class SweepCoverageConfig:
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
    asha: bool = False  # stop weak trials early with ASHA
    asha_grace_evals: int = 4  # evaluations before ASHA may stop a trial
    cpus_per_trial: float = 1.0  # CPUs per trial (sets concurrency)
    gpus_per_trial: float = -1.0  # < 0: 0.25 of a GPU when the cluster has GPUs, else none
    max_concurrent_trials: int = 0  # 0: as many as resources allow
    resume: bool = True  # continue a matching interrupted sweep in out/
    overwrite: bool = False  # true: empty an out= made with another grid and sweep afresh

    def validate(self) -> None:
        check(bool(self.worlds), "worlds", self.worlds, "at least one world")
        bad = [c for c in self.coverages if not 0.0 < c <= 1.0]
        check(bool(self.coverages) and not bad, "coverages", self.coverages, "fractions in (0, 1]")
        check(bool(self.seeds), "seeds", self.seeds, "at least one seed")
        check(self.cpus_per_trial > 0, "cpus_per_trial", self.cpus_per_trial, "> 0")


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


def coverage_threshold(
    coverages: list[float], accuracies: list[float], chance: float
) -> float | None:
    """Smallest coverage where accuracy crosses (chance + 1) / 2, linearly interpolated.

    None when the curve never crosses; the first coverage when it starts above.
    """
    midpoint = (chance + 1.0) / 2.0
    points = sorted(zip(coverages, accuracies, strict=True))
    for index, (coverage, accuracy) in enumerate(points):
        if accuracy >= midpoint:
            if index == 0:
                return float(coverage)
            low_cov, low_acc = points[index - 1]
            return float(
                low_cov + (midpoint - low_acc) / (accuracy - low_acc) * (coverage - low_cov)
            )
    return None


def summarise(rows: list[dict[str, Any]], config: SweepCoverageConfig) -> dict[str, Any]:
    """Mean over seeds per (world, coverage) of the selected test metrics, and thresholds.

    A metric a trial never reported (a sweep restored from an older version) reads NaN.
    """
    summary: dict[str, Any] = {
        key: {}
        for key in (
            "heldout_object_acc",
            "heldout_concept_acc",
            "heldout_object_acc_2obj",
            "seen_object_acc",
            "chance",
            "bag_of_concepts_2obj",
            "binding_function",
        )
    }
    summary["threshold"], summary["threshold_2obj"] = {}, {}
    for world in config.worlds:
        for key in summary:
            if not key.startswith("threshold"):
                summary[key][world] = {}
        for coverage in config.coverages:
            cell = [r for r in rows if r["world"] == world and r["coverage"] == coverage]
            if not cell:
                continue
            label = f"{coverage:g}"
            for key, metric in (
                ("heldout_object_acc", "selected_test_object_acc"),
                ("heldout_concept_acc", "selected_test_concept_acc"),
                ("heldout_object_acc_2obj", "selected_test_object_acc_2obj"),
                ("seen_object_acc", "selected_seen_object_acc"),
                ("chance", "test_object_chance"),
                ("bag_of_concepts_2obj", "test_object_boc_chance_2obj"),
            ):
                summary[key][world][label] = float(np.mean([r.get(metric, np.nan) for r in cell]))
            summary["binding_function"][world][label] = {
                name.removeprefix("selected_bf_"): float(
                    np.mean([r.get(name, np.nan) for r in cell])
                )
                for name in sorted({k for r in cell for k in r if k.startswith("selected_bf_")})
            }
        chance = float(np.mean(list(summary["chance"][world].values()) or [0.0]))
        for key, curve_key in (
            ("threshold", "heldout_object_acc"),
            ("threshold_2obj", "heldout_object_acc_2obj"),
        ):
            curve = summary[curve_key][world]
            summary[key][world] = coverage_threshold(
                [float(c) for c in curve], list(curve.values()), chance
            )
    return {"coverage": summary}


def plot(summary: dict[str, Any], path: Path) -> None:
    """Held-out object accuracy vs coverage per world: all scenes (solid), two-object scenes
    (dash-dot, where binding is needed; its threshold is the vertical line), concept
    accuracy (dotted), chance (dashed) and the bag-of-concepts level of two-object scenes
    (thin dash-dot: what concepts alone score)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5.5, 4))
    for world, curve in summary["heldout_object_acc"].items():
        coverages = [float(c) for c in curve]
        (line,) = axis.plot(coverages, list(curve.values()), "o-", label=f"{world} objects")
        axis.plot(
            coverages,
            list(summary["heldout_object_acc_2obj"][world].values()),
            "s-.",
            color=line.get_color(),
            label=f"{world} objects, 2-object scenes",
        )
        concepts = summary["heldout_concept_acc"][world]
        axis.plot(
            coverages,
            list(concepts.values()),
            ":",
            color=line.get_color(),
            label=f"{world} concepts",
        )
        axis.plot(
            coverages, list(summary["chance"][world].values()), "--", color=line.get_color(), lw=0.8
        )
        axis.plot(
            coverages,
            list(summary["bag_of_concepts_2obj"][world].values()),
            "-.",
            color=line.get_color(),
            lw=0.6,
            alpha=0.6,
        )
        if summary["threshold_2obj"][world] is not None:  # where binding starts to generalise
            axis.axvline(summary["threshold_2obj"][world], color=line.get_color(), alpha=0.3)
    axis.set(xlabel="object coverage", ylabel="held-out strict accuracy", ylim=(-0.02, 1.02))
    axis.set_title("Binding generalisation vs coverage\n(dashed: chance; thin: concepts alone)")
    axis.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def report_text(summary: dict[str, Any], config: SweepCoverageConfig, seconds: float) -> str:
    """Markdown table of the sweep: one row per (world, coverage)."""
    lines = [
        f"# Coverage sweep (controlled dual encoders, {config.model.scene_input} scenes)",
        "",
        f"Worlds {config.worlds}, coverages {config.coverages}, seeds {config.seeds}; "
        f"{config.train.steps} steps, model d={config.model.d_model} x {config.model.num_layers} "
        f"layers, scene encoder on {config.model.scene_input}; wall time {seconds / 60:.1f} min. Test metrics at the step picked on validation "
        "held-out objects; candidates are all objects / all concept tokens.",
        "",
        "| world | coverage | held-out object acc | 2-object scenes | bag-of-concepts level, 2-object "
        "| held-out concept acc | seen object acc | chance |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for world, curve in summary["heldout_object_acc"].items():
        for label, accuracy in curve.items():
            lines.append(
                f"| {world} | {label} | {accuracy:.3f} | {summary['heldout_object_acc_2obj'][world][label]:.3f} "
                f"| {summary['bag_of_concepts_2obj'][world][label]:.3f} "
                f"| {summary['heldout_concept_acc'][world][label]:.3f} "
                f"| {summary['seen_object_acc'][world][label]:.3f} | {summary['chance'][world][label]:.4f} |"
            )
    lines += binding_function_table(summary["binding_function"])
    lines += ["", "Threshold (held-out object acc crosses midpoint of chance and 1):", ""]
    lines += [
        f"- {world}: all scenes {_rounded(value)}, "
        f"two-object scenes {_rounded(summary['threshold_2obj'][world])}"
        for world, value in summary["threshold"].items()
    ]
    return "\n".join(lines) + "\n"


def binding_function_table(cells: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    """Markdown rows: additive R^2 and held-out object accuracy through each approximator."""
    metrics = sorted({name for curve in cells.values() for cell in curve.values() for name in cell})
    approximators = [
        name.removesuffix("_object_acc")
        for name in metrics
        if name.endswith("_object_acc") and name != "real_object_acc"
    ]
    if not metrics:  # trials restored from a version without the analysis
        return []
    lines = [
        "",
        "Binding function of the selected model: additive R^2 over all ordered 2-object scenes, "
        "and held-out object accuracy of the model's own probes on its real embeddings and on "
        "approximators fitted to scenes of seen objects only:",
        "",
        "| "
        + " | ".join(["world", "coverage", "Level I R^2", "Level II R^2", "real", *approximators])
        + " |",
        "|---|---|---|---|---|" + "---|" * len(approximators),
    ]
    for world, curve in cells.items():
        for label, cell in curve.items():
            values = [
                cell.get(name, np.nan) for name in ("level1_r2", "level2_r2", "real_object_acc")
            ]
            values += [cell.get(f"{name}_object_acc", np.nan) for name in approximators]
            lines.append(f"| {world} | {label} | " + " | ".join(f"{v:.3f}" for v in values) + " |")
    return lines


def _rounded(value: float | None) -> str:
    return "not crossed" if value is None else f"{value:.3f}"


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
    results = summarise(rows, config)
    results["coverage"]["trials"] = {"finished": len(rows), "total": len(grid)}
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(results["coverage"], out / "coverage.png")
    report = report_text(results["coverage"], config, time.time() - started)
    with pipeline_run(config.experiment, f"{config.name}-summary", to_dict(config)):
        write_outputs(out, config, results, report)
        log_results(results)
        log_outputs(out)  # report and plots; trial checkpoints stay in out/tune
    print(report)
    return results


if __name__ == "__main__":
    cli(main)
