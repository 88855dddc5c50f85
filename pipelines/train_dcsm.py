"""Train a DCSM scorer on a frozen backbone's cached dense features and compare with its cosine.

    python pipelines/train_dcsm.py                # clevr_pairs, train_occlip's mean-pooled CLIP
    python pipelines/train_dcsm.py backbone_checkpoint= backbone=ViT-B-16 pretrained=openai
    python pipelines/train_dcsm.py --config pipelines/configs/smoke/train_dcsm.yaml

Steps: build (or reuse) the synthetic shards with train_occlip's naming; resolve the backbone
(a bindkit checkpoint, an open_clip model + pretrained tag/path, or, when the checkpoint is
missing, a random-init small backbone saved once so every process sees the same weights);
cache dense features once with Ray Data; train the scorer with the shared Ray Train loop on
the cache; graft the trained head onto the backbone; evaluate DCSM and the same backbone's
pooled cosine (the CLIP baseline) on the hard-negative suites of ``eval_split``.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

try:
    from pipelines.train_occlip import SyntheticData, prepare_data
except ModuleNotFoundError:  # run as a script: the repository root is not on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from pipelines.train_occlip import SyntheticData, prepare_data

from components.config import load_config, to_dict
from components.runtime import init_ray
from components.tracking import log_results, pipeline_run, tracking_uri, write_outputs
from components.training.loop import TrainConfig
from components.training.trainer import ScalingSettings, fit

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "train_dcsm.yaml"


@dataclass
class DcsmOptions:
    """DCSM model options (components/models/dcsm.py); empty lists mean the defaults."""

    context_length: int = 30
    lexicon: list[str] = field(default_factory=list)  # empty = DEFAULT_LEXICON
    signature_seed: int = 15
    normalize: str = "per_map"  # per_map | batch (the reference's global z-score)
    head: str = "cnn"  # cnn (reference, size-specific) | pooled (any backbone)
    pool: list[int] = field(default_factory=lambda: [16, 16])
    channels: int = 4
    hidden: int = 128
    dropout: float = 0.1
    logit_dropout: bool = True
    negative_kinds: list[str] = field(default_factory=list)  # empty = every kind
    in_batch_negatives: bool = True  # False: each scene against its own candidates only

    def model_options(self) -> dict[str, Any]:
        options = asdict(self)
        options["lexicon"] = options["lexicon"] or None
        options["negative_kinds"] = options["negative_kinds"] or None
        return options


@dataclass
class TrainDcsmConfig:
    backbone_checkpoint: str = "outputs/train_occlip_dense/clip/checkpoint"  # any bindkit one
    fallback: bool = True  # checkpoint missing: use a random-init ``backbone`` (and say so)
    backbone: str = "tiny"  # small config or open_clip name, when no checkpoint is used
    pretrained: str = ""  # open_clip tag or local weights for ``backbone``
    image_size: int = 0  # 0 = the backbone's own
    data: str = ""  # shard directory with train/ and eval_split/; empty = synthetic
    synthetic: SyntheticData = field(default_factory=SyntheticData)
    features_root: str = ""  # where feature caches live; empty = <data>/features
    feature_actors: int = 1
    feature_batch_size: int = 64
    dcsm: DcsmOptions = field(default_factory=DcsmOptions)
    train: TrainConfig = field(default_factory=TrainConfig)
    scaling: ScalingSettings = field(default_factory=ScalingSettings)
    eval_split: str = "test_heldout"
    suites: list[str] = field(
        default_factory=lambda: ["swap_att", "swap_rel", "replace_rel", "negation"]
    )
    eval_limit: int = 0  # items per suite, 0 = all
    eval_batch_size: int = 1  # items per DCSM score call (off-block pairs are wasted work)
    seed: int = 0
    out: str = "outputs/train_dcsm"
    experiment: str = "train_dcsm"


def resolve_backbone(config: TrainDcsmConfig) -> tuple[dict[str, Any], str]:
    """A backbone spec every process rebuilds identically, and a line saying what it is."""
    import torch

    from components.models.backbone import build_backbone
    from components.models.checkpoint import save_checkpoint
    from components.models.clip import CLIP

    if config.backbone_checkpoint:
        path = Path(config.backbone_checkpoint)
        if (path / "config.json").is_file():
            return {"checkpoint": str(path)}, f"backbone of checkpoint {path}"
        if not config.fallback:
            raise FileNotFoundError(
                f"backbone_checkpoint={path}: no bindkit checkpoint there "
                "(run pipelines/train_occlip.py model=clip, or fallback=true)"
            )
        note = f"random-init {config.backbone!r} (fallback: {path} missing)"
    else:
        note = (
            f"{config.backbone!r} pretrained={config.pretrained}"
            if config.pretrained
            else f"random-init {config.backbone!r} (no backbone_checkpoint given)"
        )
    overrides = {"image_size": config.image_size} if config.image_size else {}
    if config.pretrained:
        return build_backbone(config.backbone, config.pretrained, **overrides).config, note
    # Random weights are only reproducible through a file: save them once, reuse after.
    saved = Path(config.out) / "backbone" / f"{config.backbone}-{config.image_size}-s{config.seed}"
    if not (saved / "config.json").is_file():
        torch.manual_seed(config.seed)
        save_checkpoint(CLIP(build_backbone(config.backbone, **overrides)), saved)
    return {"checkpoint": str(saved)}, note


def backbone_config(spec: dict[str, Any]) -> dict[str, Any]:
    """The Backbone.config inside a spec (read from a checkpoint's config.json if needed)."""
    from components.models.checkpoint import read_checkpoint_config

    if "checkpoint" in spec:
        return read_checkpoint_config(spec["checkpoint"])["config"]["backbone"]
    return dict(spec)


def cache_dir(config: TrainDcsmConfig, data: Path, spec: dict[str, Any]) -> Path:
    from components.models.features import backbone_fingerprint

    root = Path(config.features_root) if config.features_root else data / "features"
    name = backbone_config(spec)["name"].replace("/", "_")
    return root / f"{name}-{backbone_fingerprint(spec)}-L{config.dcsm.context_length}"


def train(
    config: TrainDcsmConfig, spec: dict[str, Any], features: Path, parent_run_id: str
) -> Path:
    """Fit the scorer on the feature cache with the shared Ray Train loop; its checkpoint dir."""
    import mlflow
    import ray.data

    from components.models.features import feature_files

    dataset = ray.data.read_parquet(feature_files(features))
    model_spec = {
        "name": "dcsm",
        "backbone": backbone_config(spec),
        "load_pretrained": False,
        **config.dcsm.model_options(),
    }
    with mlflow.start_run(run_name="dcsm", nested=True, parent_run_id=parent_run_id) as run:
        mlflow.log_params({f"train.{k}": v for k, v in asdict(config.train).items()})
        result = fit(
            model_spec,
            config.train,
            dataset,
            config.scaling,
            storage_path=Path(config.out) / "ray",
            run_name="dcsm",
            mlflow={"tracking_uri": tracking_uri(), "run_id": run.info.run_id},
        )
    target = Path(config.out) / "dcsm" / "trained"
    shutil.rmtree(target, ignore_errors=True)
    with result.checkpoint.as_directory() as directory:
        shutil.copytree(directory, target)
    return target


def evaluate_models(
    config: TrainDcsmConfig, models: dict[str, Any], data: Path
) -> dict[str, dict[str, float]]:
    """Accuracy of the positive over its hard negative, per suite and model."""
    from components.evaluation.metrics import evaluate
    from components.evaluation.synthetic import synthetic_suites

    suites = synthetic_suites(data / config.eval_split, config.suites, config.eval_limit or None)
    results: dict[str, dict[str, float]] = {}
    for name, model in models.items():
        batch_size = config.eval_batch_size if name == "dcsm" else 32
        results[name] = {
            suite: evaluate(model, bench, batch_size, progress=False).summary()["accuracy"]
            for suite, bench in suites.items()
            if bench.items
        }
    return results


def report(
    results: dict[str, dict[str, float]], config: TrainDcsmConfig, facts: dict[str, Any]
) -> str:
    from components.evaluation.report import accuracy_table

    lines = [
        f"# train_dcsm on {config.data or config.synthetic.world} ({config.eval_split})",
        "",
        f"Backbone: {facts['backbone']}.",
        "",
        *accuracy_table(results, config.suites),
    ]
    lines += [
        "",
        f"Feature cache: {facts['cache_rows']} rows in {facts['cache_seconds']:.1f} s "
        f"({facts['cache_rows_per_second']:.1f} rows/s), {facts['cache_dir']}.",
        f"Scorer training: {config.train.steps} steps in {facts['train_seconds']:.1f} s; "
        f"evaluation {facts['eval_seconds']:.1f} s.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> dict[str, dict[str, float]]:
    import mlflow
    from safetensors.torch import load_file

    from components.models.checkpoint import save_checkpoint
    from components.models.clip import CLIP
    from components.models.dcsm import DCSM
    from components.models.features import cache_features, load_backbone

    config = load_config(TrainDcsmConfig, argv, DEFAULT_CONFIG)
    init_ray()
    with pipeline_run(config.experiment, "train_dcsm", to_dict(config)) as run:
        data = prepare_data(config)
        spec, backbone_note = resolve_backbone(config)
        print(f"backbone: {backbone_note}", flush=True)
        features = cache_dir(config, data, spec)
        card = cache_features(
            data / "train",
            features,
            spec,
            config.dcsm.context_length,
            num_actors=config.feature_actors,
            batch_size=config.feature_batch_size,
        )
        mlflow.log_metrics(
            {
                "cache.seconds": card["seconds"],
                "cache.rows": card["rows"],
                "cache.rows_per_second": card["rows_per_second"],
            }
        )
        started = time.perf_counter()
        trained = train(config, spec, features, run.info.run_id)
        train_seconds = time.perf_counter() - started

        backbone = load_backbone(spec)
        model = DCSM(backbone, **config.dcsm.model_options())
        model.load_head_state(load_file(str(trained / "model.safetensors")))
        save_checkpoint(
            model,
            Path(config.out) / "dcsm" / "checkpoint",
            extra={"backbone": backbone_note, "features": str(features)},
        )
        started = time.perf_counter()
        results = evaluate_models(
            config, {"dcsm": model.eval(), "cosine": CLIP(backbone).eval()}, data
        )
        facts = {
            "backbone": backbone_note,
            "cache_dir": str(features),
            "cache_rows": card["rows"],
            "cache_seconds": card["seconds"],
            "cache_rows_per_second": card["rows_per_second"],
            "train_seconds": train_seconds,
            "eval_seconds": time.perf_counter() - started,
        }
        log_results(results)
        text = report(results, config, facts)
        write_outputs(config.out, config, results, text)
    print(text)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
