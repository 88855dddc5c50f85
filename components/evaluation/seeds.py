"""Several seeds, one table: per-seed accuracies -> mean, sd and the per-seed lists.

One seed is not a result: the same default config gave CLIP held-out swap_att 0.592 in one
run and 0.471 in the next. Pipelines train every model once per seed and report
``{model: {suite: mean}}`` with ``"per_seed"`` and ``"sd"`` beside it (docs/architecture.md).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from components.data.splits import SplitAccess

H = TypeVar("H")

PerSeed = dict[str, dict[str, list[float]]]  # model -> suite -> one accuracy per seed


def collect(per_seed: PerSeed, model: str, accuracies: dict[str, float]) -> None:
    """Append one seed's suite accuracies to ``per_seed[model]``."""
    for suite, accuracy in accuracies.items():
        per_seed.setdefault(model, {}).setdefault(suite, []).append(float(accuracy))


def summarise(per_seed: PerSeed) -> dict[str, Any]:
    """{model: {suite: mean}, "sd": {model: {suite: sd}}, "per_seed": per_seed}.

    sd is the sample standard deviation (n - 1); a single seed has sd 0.
    """
    means = {
        m: {s: statistics.fmean(v) for s, v in suites.items()} for m, suites in per_seed.items()
    }
    sds = {
        m: {s: statistics.stdev(v) if len(v) > 1 else 0.0 for s, v in suites.items()}
        for m, suites in per_seed.items()
    }
    return {**means, "sd": sds, "per_seed": per_seed}


def model_means(summary: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The {model: {suite: mean}} part of a ``summarise`` result."""
    return {k: v for k, v in summary.items() if k not in ("sd", "per_seed", "val")}


def mean_sd_table(summary: dict[str, Any], suites: list[str] | tuple[str, ...]) -> list[str]:
    """Markdown rows of model x suite as ``mean +- sd (n seeds)``."""
    means = model_means(summary)
    shown = [s for s in suites if any(s in r for r in means.values())]
    lines = ["| model | " + " | ".join(shown) + " |", "|---" * (len(shown) + 1) + "|"]
    for model, accuracies in means.items():
        cells = []
        for suite in shown:
            runs = summary["per_seed"][model].get(suite, [])
            if not runs:  # every seed skipped every item (suite_accuracies said why)
                cells.append("no scorable items")
                continue
            sd = summary["sd"][model].get(suite, float("nan"))
            mean = accuracies.get(suite, float("nan"))
            cells.append(f"{mean:.3f} +- {sd:.3f} (n={len(runs)})")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return lines


def train_select_test(
    seeds: Sequence[int],
    train: Callable[[int], H],
    evaluate: Callable[[H, Path], dict[str, dict[str, float]]],
    access: SplitAccess,
    select_split: str,
    test_split: str,
) -> dict[str, Any]:
    """Train once per seed, score each seed on ``select_split``, then on ``test_split`` once.

    ``train(seed)`` returns a handle (checkpoints, models); ``evaluate(handle, split_dir)``
    returns {model: {suite: accuracy}}. Every seed is trained and validated before the
    first test read (``access.final()``), so nothing chosen can have seen the test.
    Returns the test summary with the validation summary under ``"val"``; with
    ``test_split`` empty, only the validation summary (tuning runs that never see a test).
    """
    handles: list[H] = []
    val: PerSeed = {}
    for seed in seeds:
        handle = train(seed)
        handles.append(handle)
        if select_split:
            for model, accuracies in evaluate(handle, access.path(select_split, "select")).items():
                collect(val, model, accuracies)
                print(f"seed {seed} {model} {select_split}: {accuracies}", flush=True)
    test: PerSeed = {}
    if not test_split:  # a selection-only run: no final split is ever opened
        return {**summarise(test), "val": summarise(val)}
    access.final()
    for handle in handles:
        for model, accuracies in evaluate(handle, access.path(test_split, "final")).items():
            collect(test, model, accuracies)
    return {**summarise(test), "val": summarise(val)}


def merge_runs(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One summary from several runs' results.json (e.g. one job per seed), val included."""
    test: PerSeed = {}
    val: PerSeed = {}
    for run in runs:
        for target, source in (
            (test, run["per_seed"]),
            (val, run.get("val", {}).get("per_seed", {})),
        ):
            for model, suites in source.items():
                for suite, values in suites.items():
                    target.setdefault(model, {}).setdefault(suite, []).extend(values)
    return {**summarise(test), "val": summarise(val)}
