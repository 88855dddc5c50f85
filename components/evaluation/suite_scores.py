"""A trained model's accuracy on one split's suites, as every training pipeline measures it.

A suite is a hard-negative kind of the split's shards (``swap_att``, ...) or, in the final
evaluation only, a public benchmark ``"sugarcrepe:ROOT"`` (components.evaluation.loaders
.suites): public suites are test data, so model choice never reads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from components.evaluation.benchmark import Benchmark
from components.evaluation.loaders.suites import is_public_suite, public_benchmarks
from components.evaluation.metrics import evaluate
from components.evaluation.report import log_model_eval
from components.evaluation.seeds import mean_sd_table, model_means
from components.evaluation.synthetic import synthetic_suites
from components.platform.storage import basename

FINAL_GALLERY = 12  # failures shown per suite in the final (test) evaluation


def split_suites(
    split_dir: str | Path, suites: list[str], limit: int, final: bool
) -> dict[str, Benchmark]:
    """The split's hard-negative suites (``limit`` items each, 0 = all), and the public
    suites when ``final``."""
    kinds = [s for s in suites if not is_public_suite(s)]
    benchmarks = synthetic_suites(split_dir, kinds, limit or None)
    if final:
        public = [s for s in suites if is_public_suite(s)]
        benchmarks |= {b.name: b for b in public_benchmarks(public, limit)}
    return benchmarks


def suite_accuracies(
    model: Any,
    run_key: Any,
    benchmarks: dict[str, Benchmark],
    split_dir: str | Path,
    batch_size: int,
    final: bool,
) -> dict[str, float]:
    """Accuracy of the positive over its negative per suite with a scorable item (a suite
    whose items were all skipped is said so and left out, the others still reported); the
    metrics (and, in the final evaluation, failure galleries) go to the run that trained
    ``run_key`` (a checkpoint path or the model object; report.log_model_eval)."""
    evaluations = {
        name: evaluate(model, bench, batch_size, progress=False)
        for name, bench in benchmarks.items()
        if bench.items
    }
    for name, result in list(evaluations.items()):
        if not result.items:
            print(f"{basename(split_dir)}/{name}: {result.unscored_note()}", flush=True)
            del evaluations[name]
    gallery_limit = FINAL_GALLERY if final else 0
    log_model_eval(run_key, basename(split_dir), evaluations, gallery_limit=gallery_limit)
    return {name: result.summary()["accuracy"] for name, result in evaluations.items()}


def table_columns(results: dict[str, Any], suites: list[str]) -> list[str]:
    """Synthetic kinds in config order, then the public benchmarks the results hold."""
    kinds = [s for s in suites if not is_public_suite(s)]
    public = sorted({k for r in model_means(results).values() for k in r} - set(kinds))
    return kinds + public


def seed_tables(
    results: dict[str, Any], suites: list[str], eval_split: str, select_split: str
) -> list[str]:
    """Markdown: the final table (read once), then the validation table model choice used,
    each model x suite as mean +- sd over seeds."""
    lines = ["## no final split read (eval_split is empty: a selection-only run)"]
    if eval_split:
        lines = [
            f"## {eval_split} (final)",
            "",
            *mean_sd_table(results, table_columns(results, suites)),
        ]
    if select_split and any(model_means(results["val"]).values()):
        lines += ["", f"## {select_split} (selection)", ""]
        lines += mean_sd_table(results["val"], suites)
    return lines
