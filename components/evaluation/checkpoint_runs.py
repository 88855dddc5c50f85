"""Trained checkpoints scored on named suites, side by side: what pipelines/evaluate.py runs.

A suite is ``synthetic:<split dir>`` (one benchmark per hard-negative kind of that split), a
public suite with its root (``"sugarcrepe:ROOT"``) or a public benchmark name read from a
root folder. Each checkpoint is scored through the Scorer contract, in this process or, for
suites above a size, on Ray actors that each hold the model once (scoring.py); DCSM gets its
paper's text handling (dcsm_protocol.py). Every (model, suite) leaves a ``RunNote`` saying
how it was scored, for the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from components.data.worlds import world_of_data
from components.evaluation import (
    Benchmark,
    EvalResult,
    get_benchmark,
    markdown_table,
    results_dict,
)
from components.evaluation.dcsm_protocol import text_rewrite
from components.evaluation.loaders.suites import is_public_suite, public_benchmarks
from components.evaluation.report import suite_of
from components.evaluation.scoring import (
    CheckpointScorer,
    ParserSpec,
    evaluate_on_actors,
    start_scorer_actors,
)
from components.evaluation.synthetic import synthetic_suites
from components.models.checkpoint import read_checkpoint_config
from components.models.occlip.occlip import NEGATION_RULES
from components.platform.config import ConfigError, check
from components.platform.storage import basename, child, is_dir, parent
from components.platform.tracking import log_results

SYNTHETIC = "synthetic:"
NO_SCORABLE_ITEMS = "no_scorable_items"  # results.json key: {model: {suite: why}}


@dataclass
class ScoringOptions:
    """How every checkpoint is scored: batches, device, Ray actors, test-time rules."""

    batch_size: int = 16  # items per scorer.score call
    device: str = "auto"  # auto | cpu | cuda, for in-process scoring
    ray_threshold: int = 2000  # suites with more items than this are scored on Ray actors
    ray_actors: int = 2  # actors per model (each loads the model once)
    actor_cpus: float = 1.0  # CPUs per scoring actor
    actor_gpus: float = 0.0  # GPUs per scoring actor (fractions share one)
    negation: str = ""  # OC-CLIP's test-time rule: subtract | ignore | "" (checkpoint's)
    whatsup_on_under: bool = True  # WhatsUp on/under -> above/below for every model (or none)

    def validate(self) -> None:
        check(self.batch_size > 0, "batch_size", self.batch_size, "an integer > 0")
        check(self.device in ("auto", "cpu", "cuda"), "device", self.device, "auto | cpu | cuda")
        check(
            self.negation in ("", *NEGATION_RULES),
            "negation",
            self.negation,
            f"'' or one of {' | '.join(NEGATION_RULES)}",
        )


@dataclass(frozen=True)
class Suite:
    """A loaded benchmark and where it came from (the world decides OC-CLIP's parser)."""

    benchmark: Benchmark
    synthetic: bool
    world: str | None = None  # from the split's card.json; None for public suites


@dataclass(frozen=True)
class RunNote:
    """How one (model, suite) was scored, for report.md."""

    label: str
    benchmark: str
    items: int
    path: str
    parser: str
    rewritten: bool
    seconds: float


def model_labels(checkpoints: list[str | Path]) -> list[str]:
    """Each checkpoint's model name; names shared by several get their parent dir's name."""
    names = [read_checkpoint_config(c)["name"] for c in checkpoints]
    parents = [
        c.resolve().parent.name if isinstance(c, Path) else basename(parent(c)) for c in checkpoints
    ]
    labels = [
        name if names.count(name) == 1 else f"{name}-{folder}"
        for name, folder in zip(names, parents, strict=True)
    ]
    seen: dict[str, int] = {}
    unique = []
    for label in labels:  # same name and same parent dir name: number them in order
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if labels.count(label) == 1 else f"{label}-{seen[label]}")
    return unique


def load_suites(
    specs: list[str],
    limit: int,
    synthetic_kinds: list[str],
    root: str,
    roots: dict[str, str],
    benchmark_options: dict[str, dict[str, Any]],
) -> tuple[list[Suite], list[str]]:
    """Every benchmark ``specs`` name (``limit`` items each, 0 = all; public benchmark names
    read from ``roots[family]`` or ``root``), and the names of those that came out empty."""
    suites: list[Suite] = []
    for spec in specs:
        if spec.startswith(SYNTHETIC):
            split_dir = child(spec[len(SYNTHETIC) :])  # a local folder or a URI
            if not is_dir(str(split_dir)):
                raise ConfigError(f"suite {spec!r}: {split_dir} is not a directory of shards")
            world = world_of_data(parent(str(split_dir)))
            found = synthetic_suites(split_dir, synthetic_kinds, limit or None)
            suites += [Suite(bench, True, world) for bench in found.values()]
            continue
        if is_public_suite(spec):  # "sugarcrepe:ROOT", "whatsup/controlled_a:ROOT"
            suites += [Suite(b, False) for b in public_benchmarks([spec], limit)]
            continue
        folder = roots.get(suite_of(spec), root)
        if not folder:
            raise ConfigError(
                f"suite {spec!r} is a public benchmark: set root=DIR (or "
                f"roots.{suite_of(spec)}=DIR) to the directory holding its files"
            )
        bench = get_benchmark(spec, folder, **benchmark_options.get(spec, {}))
        suites.append(Suite(bench.subset(limit) if limit else bench, False))
    names = [s.benchmark.name for s in suites]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"suites {specs} give benchmarks {duplicates} more than once")
    empty = [s.benchmark.name for s in suites if not s.benchmark.items]
    return [s for s in suites if s.benchmark.items], empty


def evaluate_model(
    options: ScoringOptions,
    checkpoint: str | Path,
    label: str,
    suites: list[Suite],
    parser_for: Callable[[Suite], ParserSpec],
    start_ray: Callable[[], Any],
) -> tuple[list[EvalResult], list[RunNote]]:
    """Every suite for one checkpoint: in-process, or on Ray actors above the threshold
    (``start_ray`` is called once, before the first actor starts)."""
    import ray
    import torch

    architecture = read_checkpoint_config(checkpoint)["name"]
    device = options.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    local: CheckpointScorer | None = None
    actors: list[Any] = []
    results, notes = [], []
    try:
        for suite in suites:
            benchmark = suite.benchmark
            rewrite = text_rewrite(benchmark.name, architecture == "dcsm", options.whatsup_on_under)
            if rewrite is not None:
                benchmark = benchmark.map_texts(rewrite)
            parser = parser_for(suite)
            start = time.perf_counter()
            on_ray = len(benchmark) > options.ray_threshold
            if on_ray:
                if not actors:
                    start_ray()
                    actors = start_scorer_actors(
                        str(checkpoint),
                        options.ray_actors,
                        options.actor_cpus,
                        options.actor_gpus,
                        options.negation,
                    )
                result = evaluate_on_actors(actors, benchmark, parser, options.batch_size, label)
                parses = ray.get(actors[0].parses.remote())
            else:
                local = local or CheckpointScorer(str(checkpoint), device, options.negation)
                result = replace(
                    local.evaluate(benchmark, parser, options.batch_size), scorer_name=label
                )
                parses = local.parses()
            results.append(result)
            notes.append(
                RunNote(
                    label,
                    benchmark.name,
                    len(benchmark),
                    f"ray x{len(actors)}" if on_ray else device,
                    parser[0] if parses else "-",
                    rewrite is not None,
                    time.perf_counter() - start,
                )
            )
            shown = f"{result.headline():.3f}" if result.items else result.unscored_note()
            print(f"{label} on {benchmark.name}: {shown}", flush=True)
    finally:
        for actor in actors:
            ray.kill(actor)
    return results, notes


def scored(results: list[EvalResult]) -> list[EvalResult]:
    """The results that have a number: at least one item of the suite was scored."""
    return [r for r in results if r.items]


def headline_results(results: list[EvalResult]) -> dict[str, Any]:
    """results.json: ``{model: {suite: headline}}``; a suite with no scorable item is null
    there, and why is under ``"no_scorable_items": {model: {suite: note}}``."""
    headline: dict[str, Any] = results_dict(scored(results))
    for r in results:
        if not r.items:
            headline.setdefault(r.scorer_name, {})[r.benchmark.name] = None
            notes = headline.setdefault(NO_SCORABLE_ITEMS, {})
            notes.setdefault(r.scorer_name, {})[r.benchmark.name] = r.unscored_note()
    return headline


def evaluation_report(
    labels: dict[str, str | Path],
    results: list[EvalResult],
    notes: list[RunNote],
    empty: list[str],
) -> str:
    """report.md: the models, the headline table, and how each number was obtained."""
    numbered, unscored = scored(results), [r for r in results if not r.items]
    lines = [
        f"# evaluate: {len(labels)} model(s) x {len({n.benchmark for n in notes})} suite(s)",
        "",
        "| model | architecture | checkpoint |",
        "|---|---|---|",
        *(
            f"| {label} | {read_checkpoint_config(path)['name']} | {path} |"
            for label, path in labels.items()
        ),
        "",
        "## Headline metric (%)",
        "",
        markdown_table(numbered).rstrip() if numbered else "No suite had a scorable item.",
        "",
        *(
            f"No scorable items: {r.scorer_name} on {r.benchmark.name}, {r.unscored_note()}."
            for r in unscored
        ),
        *([""] if unscored else []),
        "## Runs",
        "",
        "| model | suite | items | where | parser | DCSM text rewrite | seconds |",
        "|---|---|---:|---|---|---|---:|",
        *(
            f"| {n.label} | {n.benchmark} | {n.items} | {n.path} | {n.parser} | "
            f"{'yes' if n.rewritten else 'no'} | {n.seconds:.1f} |"
            for n in notes
        ),
        "",
    ]
    if empty:
        lines += [f"Suites with no items, not scored: {', '.join(empty)}.", ""]
    lines += [
        "Files: results.md (this table), results.csv (every number), categories.csv, "
        "plots/<suite>.png, failures/<model>__<suite>.png.",
    ]
    return "\n".join(lines) + "\n"


def log_evaluation(out: Path, results: list[EvalResult], notes: list[RunNote]) -> None:
    """Headlines, every summary number and timings as metrics of the active MLflow run;
    tables and plots as its files."""
    import mlflow

    results = scored(results)
    log_results(results_dict(results))
    summaries: dict[str, dict[str, Any]] = {}
    for r in results:
        summaries.setdefault(r.scorer_name, {})[r.benchmark.name] = r.summary()
    log_results(summaries, prefix="summary.")
    seconds: dict[str, dict[str, float]] = {}
    for n in notes:
        seconds.setdefault(n.label, {})[n.benchmark] = n.seconds
    log_results(seconds, prefix="seconds.")
    for name in ("results.md", "results.csv", "categories.csv"):  # write_outputs logs the rest
        if (out / name).is_file():  # absent when no suite had a scorable item
            mlflow.log_artifact(str(out / name))
    for folder in ("plots", "failures"):
        if (out / folder).is_dir():
            mlflow.log_artifacts(str(out / folder), artifact_path=folder)
