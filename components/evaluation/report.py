"""Turn `EvalResult`s into what a reader looks at: tables, a bar chart per suite, failures.

Outputs are files (markdown, CSV, PNG) so a pipeline can write them to ``out/`` and log
the folder to MLflow. Plots use matplotlib's Agg backend: no display on a cluster node.
"""

from __future__ import annotations

import csv
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

from components.evaluation.benchmark import load_image  # noqa: E402
from components.evaluation.metrics import EvalResult, ItemResult  # noqa: E402
from components.platform.plots import save_figure  # noqa: E402
from components.platform.tracking import model_run, tracking_uri  # noqa: E402


def results_dict(results: Sequence[EvalResult]) -> dict[str, dict[str, float]]:
    """``{scorer: {benchmark: headline}}``, the shape of a pipeline's results.json."""
    nested: dict[str, dict[str, float]] = {}
    for result in results:
        nested.setdefault(result.scorer_name, {})[result.benchmark.name] = result.headline()
    return nested


def summary_rows(results: Sequence[EvalResult]) -> list[dict[str, Any]]:
    """One row per (scorer, benchmark) with the headline and every summary number."""
    return [
        {
            "scorer": r.scorer_name,
            "benchmark": r.benchmark.name,
            "metric": r.benchmark.headline,
            "value": r.headline(),
            **r.summary(),
        }
        for r in results
    ]


def markdown_table(results: Sequence[EvalResult]) -> str:
    """Benchmarks as rows, scorers as columns, headline metric in percent (paper style)."""
    table = results_dict(results)
    scorers = list(table)
    benchmarks = list(dict.fromkeys(r.benchmark.name for r in results))
    metric = {r.benchmark.name: r.benchmark.headline for r in results}
    lines = [
        "| benchmark | metric | " + " | ".join(scorers) + " |",
        "|---|---|" + "---:|" * len(scorers),
    ]
    for name in benchmarks:
        cells = [f"{100 * table[s][name]:.1f}" if name in table[s] else "–" for s in scorers]
        lines.append(f"| {name} | {metric[name]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    # Rows differ in keys (Winoground has image_score, ARO has macro_accuracy): union them.
    fieldnames = list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)


def write_tables(results: Sequence[EvalResult], out_dir: str | Path) -> dict[str, Path]:
    """results.md (headline pivot), results.csv (all numbers), categories.csv (per category)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "markdown": out / "results.md",
        "csv": out / "results.csv",
        "categories": out / "categories.csv",
    }
    paths["markdown"].write_text(markdown_table(results), encoding="utf-8")
    _write_csv(paths["csv"], summary_rows(results))
    category_rows = [
        {
            "scorer": r.scorer_name,
            "benchmark": r.benchmark.name,
            "category": category,
            "accuracy": stats.accuracy,
            "count": stats.count,
        }
        for r in results
        for category, stats in r.per_category().items()
    ]
    _write_csv(paths["categories"], category_rows)
    return paths


def suite_of(benchmark_name: str) -> str:
    """The family a benchmark belongs to: "sugarcrepe/swap_att" -> "sugarcrepe"."""
    return benchmark_name.split("/", 1)[0]


def plot_suites(results: Sequence[EvalResult], out_dir: str | Path) -> list[Path]:
    """One grouped bar chart per suite: benchmarks on x, one bar per scorer, headline on y."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = results_dict(results)
    scorers = list(table)
    suites: dict[str, list[str]] = {}
    for r in results:
        names = suites.setdefault(suite_of(r.benchmark.name), [])
        if r.benchmark.name not in names:
            names.append(r.benchmark.name)
    paths = []
    width = 0.8 / len(scorers)
    for suite, names in suites.items():
        fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(names) * len(scorers) + 1.5), 3.5))
        for k, scorer in enumerate(scorers):
            xs = [i + (k - (len(scorers) - 1) / 2) * width for i in range(len(names))]
            heights = [100 * table[scorer].get(name, float("nan")) for name in names]
            bars = ax.bar(xs, heights, width=width, label=scorer)
            ax.bar_label(bars, fmt="%.1f", fontsize="x-small")
        ax.set_xticks(range(len(names)), [n.split("/", 1)[-1] for n in names], rotation=20)
        ax.set_ylim(0, 100)
        ax.set_ylabel("headline metric (%)")
        ax.set_title(suite)
        ax.legend(fontsize="small")
        paths.append(save_figure(fig, out / f"{suite}.png"))
    return paths


def _thumbnail(result: ItemResult, size: int) -> Image.Image:
    """The item's images side by side (two for Winoground), each fit into size x size."""
    images = [ImageOps.contain(load_image(source), (size, size)) for source in result.item.images]
    strip = Image.new("RGB", (size * len(images), size), "white")
    for k, image in enumerate(images):
        strip.paste(image, (k * size + (size - image.width) // 2, (size - image.height) // 2))
    return strip


def _caption_lines(result: ItemResult) -> str:
    """Each candidate with its score per image, marked with the image(s) it describes."""
    item = result.item
    lines = (
        []
        if len(item.images) == 1
        else ["      " + " / ".join(f"img{i}" for i in range(len(item.images)))]
    )
    for j, text in enumerate(item.texts):
        scores = " / ".join(f"{float(s):.3f}" for s in result.scores[:, j])
        owners = [i for i, correct in enumerate(item.correct_text) if correct == j]
        if len(item.images) == 1:
            mark = "*" if owners else " "
        else:
            mark = ",".join(f"i{i}" for i in owners) or "  "
        lines.append(f"{mark:>3} {scores}  {textwrap.shorten(text, width=48)}")
    return "\n".join(lines)


def plot_failures(
    result: EvalResult, path: str | Path, limit: int = 12, columns: int = 3, thumb: int = 160
) -> Path | None:
    """A PNG grid of the first ``limit`` failures: thumbnail, candidates and their scores.

    Returns None when there is nothing to show (the scorer got every item right).
    """
    failures = result.failures()[:limit]
    if not failures:
        return None
    columns = min(columns, len(failures))
    rows = -(-len(failures) // columns)
    # Two axes rows per gallery row: the thumbnail above, its candidates and scores below.
    fig, axes = plt.subplots(
        2 * rows,
        columns,
        figsize=(4.2 * columns, 4.2 * rows),
        squeeze=False,
        gridspec_kw={"height_ratios": [3, 2] * rows},
    )
    for ax in axes.flat:
        ax.axis("off")
    for k, failure in enumerate(failures):
        image_ax, text_ax = (
            axes[2 * (k // columns), k % columns],
            axes[2 * (k // columns) + 1, k % columns],
        )
        image_ax.imshow(_thumbnail(failure, thumb))
        image_ax.set_title(
            failure.item.item_id + (f" [{failure.item.category}]" if failure.item.category else ""),
            fontsize=8,
        )
        text_ax.text(
            0.0,
            1.0,
            _caption_lines(failure),
            transform=text_ax.transAxes,
            va="top",
            fontsize=6.5,
            family="monospace",
        )
    fig.suptitle(
        f"{result.scorer_name} on {result.benchmark.name}: failures (* or iK: the caption of image K)"
    )
    # A fixed grid: margins in inches (a 0.75-inch title band) instead of
    # tight_layout, which took ~0.5 s of a gallery's ~0.6 s and overlapped the title.
    height = 4.2 * rows
    fig.subplots_adjust(
        left=0.01, right=0.99, bottom=0.01, top=1 - 0.75 / height, wspace=0.05, hspace=0.15
    )
    return save_figure(fig, path, tight=False)


def write_report(
    results: Sequence[EvalResult], out_dir: str | Path, gallery_limit: int = 12
) -> dict[str, Any]:
    """Tables, suite charts and one failure gallery per (scorer, benchmark) under out_dir."""
    out = Path(out_dir)
    galleries = []
    for r in results:
        name = f"{r.scorer_name}__{r.benchmark.name.replace('/', '_')}.png"
        gallery = plot_failures(r, out / "failures" / name, limit=gallery_limit)
        if gallery is not None:
            galleries.append(gallery)
    return {
        "tables": write_tables(results, out),
        "plots": plot_suites(results, out / "plots"),
        "galleries": galleries,
    }


def accuracy_table(results: dict[str, dict[str, float]], suites: Sequence[str]) -> list[str]:
    """Markdown rows of model x suite accuracy (the table every training pipeline prints)."""
    shown = [s for s in suites if any(s in r for r in results.values())]
    lines = ["| model | " + " | ".join(shown) + " |", "|---" * (len(shown) + 1) + "|"]
    for model, accuracies in results.items():
        cells = " | ".join(f"{accuracies.get(s, float('nan')):.3f}" for s in shown)
        lines.append(f"| {model} | {cells} |")
    return lines


def log_model_eval(
    model: Any, split: str, evaluations: dict[str, Any], gallery_limit: int = 12
) -> None:
    """Per-suite accuracy and a failure gallery of one model, on the run that trained it.

    ``model`` is a checkpoint path or the model object; ``evaluations`` maps suite ->
    EvalResult. Nothing happens for a model this process did not train (evaluating
    someone else's model must not write into their run).
    """
    recorded = model_run(model)
    if recorded is None:
        return
    run_id, folder = recorded
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri())
    for suite, result in evaluations.items():
        accuracy = float(result.summary()["accuracy"])
        client.log_metric(run_id, f"{split}.{suite}", accuracy)
        name = f"{split}__{suite.replace('/', '_')}.png"
        if not gallery_limit:  # selection-time evaluations: metrics only
            continue
        gallery = plot_failures(result, folder / "failures" / name, limit=gallery_limit)
        if gallery is not None:
            client.log_artifact(run_id, str(gallery), "failures")
