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
more than ``ray_threshold`` items are split across Ray actors, each holding the model once
(components/evaluation/checkpoint_runs.py). Writes the results tables, one bar chart per suite family, failure galleries, results.json,
report.md and config.yaml to ``out/``, and logs all of it to MLflow.
"""

from __future__ import annotations

import components.platform.help_gate  # noqa: F401  (answers --help before torch and Ray load)

# isort: split
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from components.data.worlds import template_parser_options
from components.evaluation import write_report
from components.evaluation.checkpoint_runs import (
    SYNTHETIC,
    ScoringOptions,
    Suite,
    evaluate_model,
    evaluation_report,
    headline_results,
    load_suites,
    log_evaluation,
    model_labels,
    scored,
)
from components.evaluation.scoring import ParserSpec
from components.evaluation.synthetic import SUITES as SYNTHETIC_SUITES
from components.evaluation.zeroshot import ZeroShotConfig, checkpoints_zero_shot
from components.models.backbone import BackboneConfig
from components.platform.cli import cli, run_pipeline
from components.platform.config import ConfigError, check, check_path, to_dict
from components.platform.runtime import init_ray
from components.platform.storage import child, staged_dir
from components.platform.tracking import pipeline_run, write_outputs

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "evaluate.yaml"


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
class EvaluateConfig(ScoringOptions):
    """The checkpoints, the suites, and (inherited) how each checkpoint is scored."""

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
    gallery_limit: int = 12  # failures shown per (model, suite)
    smoke_random_model: bool = False  # models empty: save a random-init CLIP on ``backbone``
    # the architecture of the smoke_random_model CLIP (its weights are always random)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    smoke_data: SmokeData = field(default_factory=SmokeData)
    zeroshot: ZeroShotConfig = field(default_factory=ZeroShotConfig)  # ImageFolder top-1
    out: str = "outputs/evaluate"  # output folder or URI: results, report.md/html, galleries
    experiment: str = "evaluate"  # MLflow experiment name

    def validate(self) -> None:
        super().validate()
        check(self.limit >= 0, "limit", self.limit, "an integer >= 0 (0 = all)")
        check(
            not self.backbone.checkpoint,
            "backbone.checkpoint",
            self.backbone.checkpoint,
            "empty: the smoke model's backbone is built from backbone.name",
        )
        for index, model in enumerate(self.models):
            check_path(f"models[{index}]", model, "dir")


def parser_for(config: EvaluateConfig, suite: Suite) -> ParserSpec:
    """The parser a parsing model (OC-CLIP) reads this suite's captions with."""
    if config.parser == "template":
        if suite.synthetic:
            # Without a card the grammar still parses, just without the world's vocabulary.
            return "template", template_parser_options(suite.world) if suite.world else {}
        return config.public_parser, dict(config.parser_options)
    return config.parser, dict(config.parser_options)


def build_smoke_inputs(config: EvaluateConfig, out_dir: Path) -> EvaluateConfig:
    """Fill empty ``models``/``suites`` with a random-init CLIP and a tiny split under
    ``out_dir`` (out/, or its local staging folder when out= is a URI)."""
    out = out_dir / "smoke"
    models, suites = list(config.models), list(config.suites)
    if not models and config.smoke_random_model:
        from components.models.checkpoint import save_checkpoint
        from components.models.registry import create_model

        torch.manual_seed(0)
        model = create_model("clip", config.backbone.spec(), load_pretrained=False)
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


def main(argv: list[str]) -> dict[str, Any]:
    return run_pipeline(EvaluateConfig, run, argv, DEFAULT_CONFIG)


def run(config: EvaluateConfig) -> dict[str, Any]:
    with staged_dir(config.out) as out:  # out= a URI: files land here, uploaded at the end
        return evaluate_all(build_smoke_inputs(config, out), out)


def evaluate_all(config: EvaluateConfig, out: Path) -> dict[str, Any]:
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
    # Suites that cannot be read refuse the run here, before its MLflow run opens.
    suites, empty = load_suites(
        config.suites,
        config.limit,
        config.synthetic_suites,
        config.root,
        config.roots,
        config.benchmark_options,
    )
    if not suites:
        raise ConfigError(f"every suite in {config.suites} is empty: {empty}")
    with pipeline_run(config.experiment, f"evaluate-{'+'.join(labels)}", to_dict(config)):
        results, notes = [], []
        for label, checkpoint in labels.items():
            model_results, model_notes = evaluate_model(
                config, checkpoint, label, suites, lambda s: parser_for(config, s), init_ray
            )
            results += model_results
            notes += model_notes
        numbered = scored(results)  # a suite with no scorable item has no table row or plot
        if numbered:
            write_report(numbered, out, gallery_limit=config.gallery_limit)
        headline = headline_results(results)
        text = evaluation_report(labels, results, notes, empty)
        if config.zeroshot.root:  # backbone retention (zeroshot.py), beside the suites
            for label, top in checkpoints_zero_shot(labels, config.zeroshot).items():
                headline.setdefault(label, {})["zeroshot_top1"] = top["top1"]
                text += f"\nZero-shot on {config.zeroshot.root}, {label}: {top}\n"
        write_outputs(config.out, config, headline, text)
        log_evaluation(out, results, notes)
    print(text)
    return headline


if __name__ == "__main__":
    cli(main)
