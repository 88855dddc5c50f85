"""Train OC-CLIP and a CLIP baseline on the same data and backbone, then compare binding.

    python pipelines/train_occlip.py                      # synthetic clevr_pairs, both models
    python pipelines/train_occlip.py model=occlip data=datasets/my_shards train.steps=5000
    ray job submit --working-dir . -- python pipelines/train_occlip.py scaling.num_workers=8

Default: builds the synthetic world if missing (coverage 0.7), trains both models from
scratch on a tiny ViT, evaluates on held-out concept combinations (test_heldout) with the
hard-negative suites, and writes a results table; every step is tracked in MLflow.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from components.config import load_config, to_dict
from components.data.build import build_synthetic
from components.data.shards import shard_files, validate_schema
from components.data.synthetic import SyntheticSpec
from components.runtime import init_ray
from components.tracking import log_results, pipeline_run, tracking_uri, write_outputs
from components.training.loop import TrainConfig
from components.training.trainer import ScalingSettings, fit

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "train_occlip.yaml"
TRAIN_COLUMNS = ["image", "caption", "graph"]


@dataclass
class SyntheticData:
    """The synthetic world built when ``data`` is empty."""

    world: str = "clevr_pairs"
    num_scenes: int = 6000
    coverage: float = 0.7
    seed: int = 0
    image_size: int = 64
    root: str = "datasets"


@dataclass
class TrainOcclipConfig:
    model: str = "both"  # occlip | clip | both
    init: str = "scratch"  # scratch | pretrained
    backbone: str = "tiny"  # a registered small config or an open_clip model name
    pretrained: str = ""  # open_clip tag or local checkpoint path (init=pretrained)
    data: str = ""  # a shard directory with train/ and test_heldout/; empty = synthetic
    synthetic: SyntheticData = field(default_factory=SyntheticData)
    parser: str = "template"  # how OC-CLIP parses evaluation captions
    occlip: dict[str, Any] = field(default_factory=dict)  # OC-CLIP options (see registry)
    train: TrainConfig = field(default_factory=TrainConfig)
    scaling: ScalingSettings = field(default_factory=ScalingSettings)
    eval_split: str = "test_heldout"
    suites: list[str] = field(
        default_factory=lambda: ["swap_att", "swap_obj", "swap_rel", "replace_rel", "negation"]
    )
    eval_limit: int = 0  # items per suite, 0 = all
    resume: str = ""  # "": fresh; "auto": continue out/ray/<model>; else a checkpoint dir
    out: str = "outputs/train_occlip"
    experiment: str = "train_occlip"


def prepare_data(config: TrainOcclipConfig) -> Path:
    """The shard directory to train on, building the synthetic world when needed."""
    if config.data:
        return Path(config.data)
    s = config.synthetic
    path = Path(s.root) / f"{s.world}-n{s.num_scenes}-c{s.coverage}-s{s.seed}-{s.image_size}px"
    spec = SyntheticSpec(s.world, s.seed, s.coverage, s.image_size)
    if not (path / "card.json").exists():  # the card is written last: its absence = unfinished
        build_synthetic(spec, s.num_scenes, path)
    return path


def model_spec(config: TrainOcclipConfig, name: str) -> dict[str, Any]:
    backbone = {
        "name": config.backbone,
        "pretrained": config.pretrained if config.init == "pretrained" else None,
    }
    options = config.occlip if name == "occlip" else {}
    return {"name": name, "backbone": backbone, **options}


def train_one(config, name, data, parent_run_id) -> Path:
    """Fit one model with Ray Train; returns its final checkpoint directory under out/."""
    import mlflow
    import ray.data

    files = shard_files(data / "train")
    validate_schema(pq.read_schema(files[0]), str(files[0]), TRAIN_COLUMNS)
    dataset = ray.data.read_parquet([str(f) for f in files], columns=TRAIN_COLUMNS)
    with mlflow.start_run(run_name=name, nested=True, parent_run_id=parent_run_id) as run:
        mlflow.log_params(
            {"model": name, **{f"train.{k}": v for k, v in asdict(config.train).items()}}
        )
        result = fit(
            model_spec(config, name),
            config.train,
            dataset,
            config.scaling,
            storage_path=Path(config.out) / "ray",
            run_name=name,
            mlflow={"tracking_uri": tracking_uri(), "run_id": run.info.run_id},
            resume=config.resume or None,
        )
    target = Path(config.out) / name / "checkpoint"
    shutil.rmtree(target, ignore_errors=True)
    with result.checkpoint.as_directory() as directory:
        shutil.copytree(directory, target)
    return target


def evaluate_checkpoint(config, checkpoint: Path, data: Path) -> dict[str, float]:
    """Accuracy of the positive over its negative, per suite, on the evaluation split."""
    from components.evaluation.metrics import evaluate
    from components.evaluation.synthetic import synthetic_suites
    from components.models.checkpoint import load_checkpoint
    from components.parsing.registry import get_parser

    model = load_checkpoint(checkpoint).eval()
    if hasattr(model, "parser"):
        card = json.loads((data / "card.json").read_text()) if (data / "card.json").exists() else {}
        options = {"world": card["world"]} if config.parser == "template" and card else {}
        model.parser = get_parser(config.parser, **options)
    suites = synthetic_suites(data / config.eval_split, config.suites, config.eval_limit or None)
    return {
        name: evaluate(model, bench, batch_size=16, progress=False).summary()["accuracy"]
        for name, bench in suites.items()
        if bench.items
    }


def report(results: dict[str, dict[str, float]], config: TrainOcclipConfig) -> str:
    from components.evaluation.report import accuracy_table

    title = f"# train_occlip on {config.data or config.synthetic.world} ({config.eval_split})"
    return "\n".join([title, "", *accuracy_table(results, config.suites)]) + "\n"


def main(argv: list[str]) -> dict[str, dict[str, float]]:
    config = load_config(TrainOcclipConfig, argv, DEFAULT_CONFIG)
    if config.model not in ("occlip", "clip", "both"):
        raise ValueError(f"model must be occlip, clip or both, got {config.model!r}")
    names = ["occlip", "clip"] if config.model == "both" else [config.model]
    init_ray()
    results: dict[str, dict[str, float]] = {}
    with pipeline_run(config.experiment, f"train_occlip-{config.model}", to_dict(config)) as run:
        data = prepare_data(config)
        for name in names:
            checkpoint = train_one(config, name, data, run.info.run_id)
            results[name] = evaluate_checkpoint(config, checkpoint, data)
            print(f"{name}: {results[name]}", flush=True)
        log_results(results)
        text = report(results, config)
        write_outputs(config.out, config, results, text)
    print(text)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
