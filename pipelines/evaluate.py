"""Evaluate trained checkpoints on synthetic and public binding benchmarks, side by side.

    python pipelines/evaluate.py                       # train_occlip's two models, test_heldout
    python pipelines/evaluate.py \
        models=[outputs/train_occlip/occlip/checkpoint,outputs/train_occlip/clip/checkpoint] \
        suites=[synthetic:datasets/my_world/test_heldout,sugarcrepe/swap_att] root=/data/bench
    python pipelines/evaluate.py --config pipelines/configs/smoke/evaluate.yaml

A model is any bindkit checkpoint (CLIP, OC-CLIP, DCSM, ...), scored through the Scorer
contract by `components.evaluation.evaluate`. A suite is ``synthetic:<split dir>`` (one
benchmark per hard-negative kind of that split) or a public benchmark name
(`components.evaluation.benchmark_names()`) read from ``root``. OC-CLIP parses captions with
the template parser of the split's world (from ``<data dir>/card.json``) on synthetic suites
and with ``public_parser`` elsewhere, unless ``parser`` names another parser for both. DCSM
gets its paper's text handling on WhatsUp / CLEVR-bind; WhatsUp's on/under -> above/below
applies to every model or, with ``whatsup_on_under=false``, to none (`text_rewrite`). Suites with
more than ``ray_threshold`` items are split across Ray actors, each holding the model once.
Writes the results tables, one bar chart per suite family, failure galleries, results.json,
report.md and config.yaml to ``out/``, and logs all of it to MLflow.
"""

from __future__ import annotations

import components.help_gate  # noqa: F401  (answers --help before torch and Ray load)

# isort: split
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from components.config import ConfigError, check, check_path, cli, run_pipeline, to_dict
from components.data.storage import basename, child, exists, is_dir, parent, read_bytes, staged_dir
from components.evaluation import (
    Benchmark,
    EvalResult,
    get_benchmark,
    markdown_table,
    results_dict,
    write_report,
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
from components.evaluation.synthetic import SUITES as SYNTHETIC_SUITES
from components.evaluation.synthetic import synthetic_suites
from components.evaluation.zeroshot import ZeroShotConfig, checkpoints_zero_shot
from components.models.checkpoint import read_checkpoint_config
from components.models.occlip import NEGATION_RULES
from components.runtime import init_ray
from components.tracking import log_results, pipeline_run, write_outputs

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "evaluate.yaml"
SYNTHETIC = "synthetic:"


@dataclass
class SmokeData:
    """A tiny synthetic split written into out/ when ``suites`` is empty (smoke runs)."""

    rows: int = 0  # 0: never build one
    world: str = "clevr_pairs"  # world of the smoke split
    split: str = "test_heldout"  # split name written under out/
    seed: int = 0  # seed of the smoke world
    coverage: float = 0.7  # coverage of the smoke world, in (0, 1]
    image_size: int = 32  # pixels

    def validate(self) -> None:
        from components.data.build import check_synthetic_options

        check(self.rows >= 0, "rows", self.rows, "an integer >= 0 (0 = no smoke split)")
        if self.rows:
            check_synthetic_options(self.world, self.coverage, self.image_size, self.rows)


@dataclass
class EvaluateConfig:
    models: list[str] = field(default_factory=list)  # checkpoint folders or URIs
    suites: list[str] = field(default_factory=list)  # "synthetic:<split dir>" or public names
    root: str = ""  # directory holding the public benchmarks' files
    roots: dict[str, str] = field(default_factory=dict)  # per family, e.g. {sugarcrepe: DIR}
    benchmark_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # per name
    # suites read from a synthetic:<dir> split
    synthetic_suites: list[str] = field(default_factory=lambda: list(SYNTHETIC_SUITES))
    limit: int = 0  # items per suite, 0 = all
    parser: str = "template"  # template: the world's grammar on synthetic suites
    public_parser: str = "spacy"  # OC-CLIP's parser for public suites when parser=template
    parser_options: dict[str, Any] = field(default_factory=dict)  # for non-template parsers
    batch_size: int = 16  # items per scorer.score call
    device: str = "auto"  # auto | cpu | cuda, for in-process scoring
    ray_threshold: int = 2000  # suites with more items than this are scored on Ray actors
    ray_actors: int = 2  # actors per model (each loads the model once)
    actor_cpus: float = 1.0  # CPUs per scoring actor
    actor_gpus: float = 0.0  # GPUs per scoring actor (fractions share one)
    gallery_limit: int = 12  # failures shown per (model, suite)
    negation: str = ""  # OC-CLIP's test-time rule: subtract | ignore | "" (checkpoint's)
    whatsup_on_under: bool = True  # WhatsUp on/under -> above/below for every model (or none)
    smoke_random_model: bool = False  # models empty: save a random-init tiny CLIP into out/
    smoke_data: SmokeData = field(default_factory=SmokeData)
    zeroshot: ZeroShotConfig = field(default_factory=ZeroShotConfig)  # ImageFolder top-1
    out: str = "outputs/evaluate"  # output folder or URI: results, report.md/html, galleries
    experiment: str = "evaluate"  # MLflow experiment name

    def validate(self) -> None:
        check(self.limit >= 0, "limit", self.limit, "an integer >= 0 (0 = all)")
        check(self.batch_size > 0, "batch_size", self.batch_size, "an integer > 0")
        check(self.device in ("auto", "cpu", "cuda"), "device", self.device, "auto | cpu | cuda")
        check(
            self.negation in ("", *NEGATION_RULES),
            "negation",
            self.negation,
            f"'' or one of {' | '.join(NEGATION_RULES)}",
        )
        for index, model in enumerate(self.models):
            check_path(f"models[{index}]", model, "dir")


@dataclass(frozen=True)
class Suite:
    """A loaded benchmark and where it came from (the world decides OC-CLIP's parser)."""

    benchmark: Benchmark
    synthetic: bool
    world: str | None = None  # from the split's card.json; None for public suites


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


def load_suites(config: EvaluateConfig) -> tuple[list[Suite], list[str]]:
    """Every benchmark the config names, and the names of those that came out empty."""
    suites: list[Suite] = []
    for spec in config.suites:
        if spec.startswith(SYNTHETIC):
            split_dir = child(spec[len(SYNTHETIC) :])  # a local folder or a URI
            if not is_dir(str(split_dir)):
                raise ConfigError(f"suite {spec!r}: {split_dir} is not a directory of shards")
            card = child(parent(str(split_dir)), "card.json")
            # own data (build_shards) has a card without a world
            world = json.loads(read_bytes(str(card))).get("world") if exists(str(card)) else None
            found = synthetic_suites(split_dir, config.synthetic_suites, config.limit or None)
            suites += [Suite(bench, True, world) for bench in found.values()]
            continue
        if is_public_suite(spec):  # "sugarcrepe:ROOT", "whatsup/controlled_a:ROOT"
            suites += [Suite(b, False) for b in public_benchmarks([spec], config.limit)]
            continue
        root = config.roots.get(suite_of(spec), config.root)
        if not root:
            raise ConfigError(
                f"suite {spec!r} is a public benchmark: set root=DIR (or "
                f"roots.{suite_of(spec)}=DIR) to the directory holding its files"
            )
        bench = get_benchmark(spec, root, **config.benchmark_options.get(spec, {}))
        suites.append(Suite(bench.subset(config.limit) if config.limit else bench, False))
    names = [s.benchmark.name for s in suites]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"suites {config.suites} give benchmarks {duplicates} more than once")
    empty = [s.benchmark.name for s in suites if not s.benchmark.items]
    return [s for s in suites if s.benchmark.items], empty


def parser_for(config: EvaluateConfig, suite: Suite) -> ParserSpec:
    """The parser a parsing model (OC-CLIP) reads this suite's captions with."""
    if config.parser == "template":
        if suite.synthetic:
            # Without a card the grammar still parses, just without the world's vocabulary.
            return "template", {"world": suite.world} if suite.world else {}
        return config.public_parser, dict(config.parser_options)
    return config.parser, dict(config.parser_options)


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


def evaluate_model(
    config: EvaluateConfig, checkpoint: str | Path, label: str, suites: list[Suite]
) -> tuple[list[EvalResult], list[RunNote]]:
    """Every suite for one checkpoint: in-process, or on Ray actors above the threshold."""
    import ray

    architecture = read_checkpoint_config(checkpoint)["name"]
    device = config.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    local: CheckpointScorer | None = None
    actors: list[Any] = []
    results, notes = [], []
    try:
        for suite in suites:
            benchmark = suite.benchmark
            rewrite = text_rewrite(benchmark.name, architecture == "dcsm", config.whatsup_on_under)
            if rewrite is not None:
                benchmark = benchmark.map_texts(rewrite)
            parser = parser_for(config, suite)
            start = time.perf_counter()
            on_ray = len(benchmark) > config.ray_threshold
            if on_ray:
                if not actors:
                    init_ray()
                    actors = start_scorer_actors(
                        str(checkpoint),
                        config.ray_actors,
                        config.actor_cpus,
                        config.actor_gpus,
                        config.negation,
                    )
                result = evaluate_on_actors(actors, benchmark, parser, config.batch_size, label)
                parses = ray.get(actors[0].parses.remote())
            else:
                local = local or CheckpointScorer(str(checkpoint), device, config.negation)
                result = replace(
                    local.evaluate(benchmark, parser, config.batch_size), scorer_name=label
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
            print(f"{label} on {benchmark.name}: {result.headline():.3f}", flush=True)
    finally:
        for actor in actors:
            ray.kill(actor)
    return results, notes


def build_smoke_inputs(config: EvaluateConfig, out_dir: Path) -> EvaluateConfig:
    """Fill empty ``models``/``suites`` with a random-init CLIP and a tiny split under
    ``out_dir`` (out/, or its local staging folder when out= is a URI)."""
    out = out_dir / "smoke"
    models, suites = list(config.models), list(config.suites)
    if not models and config.smoke_random_model:
        from components.models.checkpoint import save_checkpoint
        from components.models.registry import create_model

        torch.manual_seed(0)
        model = create_model("clip", {"name": "tiny"}, load_pretrained=False)
        models = [str(save_checkpoint(model, out / "clip" / "checkpoint"))]
    smoke = config.smoke_data
    if not suites and smoke.rows > 0:
        from components.data.build import dataset_card
        from components.data.shards import write_shard
        from components.data.synthetic import SceneRowBuilder, SyntheticSpec

        spec = SyntheticSpec(smoke.world, smoke.seed, smoke.coverage, smoke.image_size)
        data = out / "data"
        table = SceneRowBuilder(spec, smoke.split).table(list(range(smoke.rows)))
        write_shard(table, data / smoke.split / "part-00000.parquet")
        card = dataset_card(spec, {smoke.split: smoke.rows}, data)
        (data / "card.json").write_text(json.dumps(card, indent=2))
        suites = [f"{SYNTHETIC}{data / smoke.split}"]
    return replace(config, models=models, suites=suites)


def report(
    config: EvaluateConfig,
    labels: dict[str, str | Path],
    results: list[EvalResult],
    notes: list[RunNote],
    empty: list[str],
) -> str:
    """report.md: the models, the headline table, and how each number was obtained."""
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
        markdown_table(results).rstrip(),
        "",
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


def log_to_mlflow(out: Path, results: list[EvalResult], notes: list[RunNote]) -> None:
    """Headlines, every summary number and timings as metrics; tables and plots as files."""
    import mlflow

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
        mlflow.log_artifact(str(out / name))
    for folder in ("plots", "failures"):
        if (out / folder).is_dir():
            mlflow.log_artifacts(str(out / folder), artifact_path=folder)


def main(argv: list[str]) -> dict[str, dict[str, float]]:
    return run_pipeline(EvaluateConfig, run, argv, DEFAULT_CONFIG)


def run(config: EvaluateConfig) -> dict[str, dict[str, float]]:
    with staged_dir(config.out) as out:  # out= a URI: files land here, uploaded at the end
        return evaluate_all(build_smoke_inputs(config, out), out)


def evaluate_all(config: EvaluateConfig, out: Path) -> dict[str, dict[str, float]]:
    """Every model on every suite; tables, plots and galleries into the local ``out``."""
    if not config.models:
        raise ConfigError("models is empty: give checkpoint directories, models=[DIR,...]")
    if not config.suites:
        raise ConfigError("suites is empty: give synthetic:<split dir> or benchmark names")
    if config.batch_size < 1 or config.ray_actors < 1:
        raise ConfigError(
            f"batch_size and ray_actors must be >= 1, got {config.batch_size}, {config.ray_actors}"
        )
    checkpoints = [child(m) for m in config.models]  # Paths, or URI strings
    labels = dict(zip(model_labels(checkpoints), checkpoints, strict=True))
    with pipeline_run(config.experiment, f"evaluate-{'+'.join(labels)}", to_dict(config)):
        suites, empty = load_suites(config)
        if not suites:
            raise ConfigError(f"every suite in {config.suites} is empty: {empty}")
        results: list[EvalResult] = []
        notes: list[RunNote] = []
        for label, checkpoint in labels.items():
            model_results, model_notes = evaluate_model(config, checkpoint, label, suites)
            results += model_results
            notes += model_notes
        write_report(results, out, gallery_limit=config.gallery_limit)
        headline = results_dict(results)
        text = report(config, labels, results, notes, empty)
        if config.zeroshot.root:  # backbone retention (zeroshot.py), beside the suites
            for label, top in checkpoints_zero_shot(labels, config.zeroshot).items():
                headline.setdefault(label, {})["zeroshot_top1"] = top["top1"]
                text += f"\nZero-shot on {config.zeroshot.root}, {label}: {top}\n"
        write_outputs(config.out, config, headline, text)
        log_to_mlflow(out, results, notes)
    print(text)
    return headline


if __name__ == "__main__":
    cli(main)
