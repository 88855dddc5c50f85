"""The coverage sweep's result: held-out accuracy vs coverage per world, and its threshold.

Trials of tune/sweep_coverage.py each train one controlled dual encoder at one (world,
coverage, seed) and report test metrics at the step validation picked. This module turns
those rows into the mean-over-seeds curves, the coverage at which held-out object accuracy
crosses the midpoint between chance and 1 (arXiv 2605.31503's threshold), the plot and the
report tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

# summary key -> the trial metric averaged over seeds into it
CURVES = {
    "heldout_object_acc": "selected_test_object_acc",
    "heldout_concept_acc": "selected_test_concept_acc",
    "heldout_object_acc_2obj": "selected_test_object_acc_2obj",
    "seen_object_acc": "selected_seen_object_acc",
    "chance": "test_object_chance",
    "bag_of_concepts_2obj": "test_object_boc_chance_2obj",
}


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


def summarise(
    rows: list[dict[str, Any]], worlds: list[str], coverages: list[float]
) -> dict[str, Any]:
    """Mean over seeds per (world, coverage) of the selected test metrics, and thresholds.

    A metric a trial never reported (a sweep restored from an older version) reads NaN.
    """
    summary: dict[str, Any] = {key: {} for key in (*CURVES, "binding_function")}
    summary["threshold"], summary["threshold_2obj"] = {}, {}
    for world in worlds:
        for key in summary:
            if not key.startswith("threshold"):
                summary[key][world] = {}
        for coverage in coverages:
            cell = [r for r in rows if r["world"] == world and r["coverage"] == coverage]
            if not cell:
                continue
            label = f"{coverage:g}"
            for key, metric in CURVES.items():
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


def plot_coverage(summary: dict[str, Any], path: Path) -> None:
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


def coverage_tables(summary: dict[str, Any]) -> list[str]:
    """Markdown: one row per (world, coverage), the binding-function table, the thresholds."""
    lines = [
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
    return lines


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
