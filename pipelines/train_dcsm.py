"""Train a DCSM scorer on a frozen backbone's cached dense features and compare with its cosine.

    python pipelines/train_dcsm.py                # clevr_pairs, train_occlip's mean-pooled CLIP
    python pipelines/train_dcsm.py backbone_checkpoint= backbone=ViT-B-16 pretrained=openai
    python pipelines/train_dcsm.py --config pipelines/configs/smoke/train_dcsm.yaml

Steps: build (or reuse) the synthetic shards with train_occlip's naming; resolve the backbone
(a bindkit checkpoint, an open_clip model + pretrained tag/path, or, when the checkpoint is
missing, a random-init small backbone saved once so every process sees the same weights);
cache dense features once with Ray Data; train the scorer with the shared Ray Train loop on
the cache once per seed (``seeds``, each a nested MLflow run); graft each trained head onto
the backbone; score DCSM and the same backbone's pooled cosine (the CLIP baseline) on
``select_split`` per seed, then on ``eval_split`` once for the final mean +- sd table.
"""

from __future__ import annotations

import components.help_gate  # noqa: F401  (answers --help before torch and Ray load)

# isort: split
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

try:
    from pipelines.train_occlip import SyntheticData, prepare_data, table_columns
except ModuleNotFoundError:  # run as a script: the repository root is not on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from pipelines.train_occlip import SyntheticData, prepare_data, table_columns

from components.config import check, check_path, cli, run_pipeline, to_dict
from components.data.storage import basename, child, exists, join, parent, staged_dir
from components.evaluation.seeds import mean_sd_table, model_means, train_select_test
from components.evaluation.splits import SplitAccess, require_select_split
from components.outputs import run_lock
from components.runtime import init_ray
from components.tracking import (
    finish_model_run,
    log_config_params,
    log_model_eval,
    log_results,
    model_run,
    pipeline_run,
    remember_model_run,
    tracking_uri,
    write_outputs,
)
from components.training.loop import TrainConfig
from components.training.trainer import ScalingSettings, export_checkpoint, fit

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "train_dcsm.yaml"


@dataclass
class DcsmOptions:
    """DCSM model options (components/models/dcsm.py); empty lists mean the defaults."""

    context_length: int = 30  # text tokens per caption
    lexicon: Optional[list[str]] = None  # noqa: UP045 (OmegaConf) None = default; [] = none
    signature_seed: int = 15  # seed of the functional-word signatures
    normalize: str = "per_map"  # per_map | batch (the reference's global z-score)
    head: str = "cnn"  # cnn (reference, size-specific) | pooled (any backbone)
    # similarity map size the head sees (rows, cols)
    pool: list[int] = field(default_factory=lambda: [16, 16])
    channels: int = 4  # CNN head channels
    hidden: int = 128  # head hidden width
    dropout: float = 0.1  # head dropout
    logit_dropout: bool = True  # drop whole maps during training (reference)
    negative_kinds: list[str] = field(default_factory=list)  # empty = every kind
    in_batch_negatives: bool = True  # False: each scene against its own candidates only

    def model_options(self) -> dict[str, Any]:
        options = asdict(self)  # lexicon passes as is: [] means no functional rows
        options["negative_kinds"] = options["negative_kinds"] or None
        return options


@dataclass
class TrainDcsmConfig:
    backbone_checkpoint: str = "outputs/train_occlip_dense/clip/checkpoint"  # bindkit ckpt or URI
    fallback: bool = True  # checkpoint missing: use a random-init ``backbone`` (and say so)
    backbone: str = "tiny"  # small config or open_clip name, when no checkpoint is used
    pretrained: str = ""  # open_clip tag or local weights for ``backbone``
    image_size: int = 0  # 0 = the backbone's own
    data: str = ""  # shard folder or URI with train/ and eval_split/; empty = synthetic
    # world built when data is empty
    synthetic: SyntheticData = field(default_factory=SyntheticData)
    features_root: str = ""  # folder or URI of feature caches; empty = <data>/features
    feature_actors: int = 1  # actors computing the dense feature cache
    feature_batch_size: int = 64  # rows per feature-cache batch
    dcsm: DcsmOptions = field(default_factory=DcsmOptions)
    train: TrainConfig = field(default_factory=TrainConfig)
    scaling: ScalingSettings = field(default_factory=ScalingSettings)
    eval_split: str = "test_heldout"  # split the final table is measured on
    # Hard-negative kinds of the eval split, and public suites "sugarcrepe:ROOT", ...
    # (components.evaluation.loaders.suites), read in the final evaluation only.
    suites: list[str] = field(
        default_factory=lambda: ["swap_att", "swap_rel", "replace_rel", "negation"]
    )
    eval_limit: int = 0  # items per suite, 0 = all
    eval_batch_size: int = 1  # items per DCSM score call (off-block pairs are wasted work)
    seed: int = 0  # seed of a random-init backbone's weights (fallback)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])  # one scorer run per seed
    select_split: str = "val_heldout"  # per-seed validation ("" = none); eval_split read once
    train_split: str = "train"  # split the scorer trains on (build_shards: train/val/test)
    out: str = "outputs/train_dcsm"  # output folder or URI: checkpoint, results, report
    experiment: str = "train_dcsm"  # MLflow experiment name

    def validate(self) -> None:
        check(self.eval_limit >= 0, "eval_limit", self.eval_limit, "an integer >= 0 (0 = all)")
        check(self.eval_batch_size > 0, "eval_batch_size", self.eval_batch_size, "an integer > 0")
        if self.data:
            check_path("data", self.data, "dir")


def resolve_backbone(config: TrainDcsmConfig) -> tuple[dict[str, Any], str]:
    """A backbone spec every process rebuilds identically, and a line saying what it is."""
    import torch

    from components.models.backbone import build_backbone
    from components.models.checkpoint import save_checkpoint
    from components.models.clip import CLIP

    if config.backbone_checkpoint:
        path = child(config.backbone_checkpoint)  # a local folder or a URI
        if exists(str(child(path, "config.json"))):
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
    # Random weights are only reproducible through a file: save them once, reuse after. Under
    # out= (a URI when out= is one), so every Ray worker can load the same weights.
    name = f"{config.backbone}-{config.image_size}-s{config.seed}"
    saved = child(config.out, "backbone", name)
    if not exists(str(child(saved, "config.json"))):
        torch.manual_seed(config.seed)
        with staged_dir(saved) as local:
            save_checkpoint(CLIP(build_backbone(config.backbone, **overrides)), local)
    return {"checkpoint": str(saved)}, note


def backbone_config(spec: dict[str, Any]) -> dict[str, Any]:
    """The Backbone.config inside a spec (read from a checkpoint's config.json if needed)."""
    from components.models.checkpoint import read_checkpoint_config

    if "checkpoint" in spec:
        return read_checkpoint_config(spec["checkpoint"])["config"]["backbone"]
    return dict(spec)


def cache_dir(config: TrainDcsmConfig, data: str | Path, spec: dict[str, Any]) -> str | Path:
    """The feature cache folder of this backbone and context length (a URI under a URI)."""
    from components.models.features import backbone_fingerprint

    root = child(config.features_root) if config.features_root else child(data, "features")
    name = backbone_config(spec)["name"].replace("/", "_")
    return child(root, f"{name}-{backbone_fingerprint(spec)}-L{config.dcsm.context_length}")


def train(
    config: TrainDcsmConfig,
    spec: dict[str, Any],
    features: str | Path,
    parent_run_id: str,
    out: Path,
    seed: int = 0,
) -> Path:
    """Fit the scorer for one seed with the shared Ray Train loop; its checkpoint dir (under
    the local ``out``; Ray's own run folder is ``config.out``/ray, URI or not)."""
    import mlflow
    import ray.data

    from components.data.storage import ray_paths
    from components.models.features import feature_files

    paths, filesystem = ray_paths(feature_files(features))
    dataset = ray.data.read_parquet(paths, filesystem=filesystem)
    model_spec = {
        "name": "dcsm",
        "backbone": backbone_config(spec),
        "load_pretrained": False,
        **config.dcsm.model_options(),
    }
    train_config = replace(config.train, seed=seed)
    run_name = f"dcsm-seed{seed}"
    with mlflow.start_run(run_name=run_name, nested=True, parent_run_id=parent_run_id) as run:
        log_config_params({**to_dict(config), "train": asdict(train_config)}, seed=seed)
        result = fit(
            model_spec,
            train_config,
            dataset,
            config.scaling,
            storage_path=join(config.out, "ray"),
            run_name=run_name,
            mlflow={"tracking_uri": tracking_uri(), "run_id": run.info.run_id},
        )
    target = export_checkpoint(result.checkpoint, out / "dcsm" / f"seed{seed}" / "trained")
    finish_model_run(run.info.run_id, target)  # checkpoint + curves on the model's run
    return target


def evaluate_models(
    config: TrainDcsmConfig, models: dict[str, Any], split_dir: str | Path, final: bool = False
) -> dict[str, dict[str, float]]:
    """Accuracy of the positive over its hard negative, per suite and model, on one split
    (and, in the final evaluation only, on the public suites)."""
    from components.evaluation.loaders.suites import is_public_suite, public_benchmarks
    from components.evaluation.metrics import evaluate
    from components.evaluation.synthetic import synthetic_suites

    kinds = [s for s in config.suites if not is_public_suite(s)]
    suites = synthetic_suites(split_dir, kinds, config.eval_limit or None)
    if final:
        public = [s for s in config.suites if is_public_suite(s)]
        suites |= {b.name: b for b in public_benchmarks(public, config.eval_limit)}
    results: dict[str, dict[str, float]] = {}
    for name, model in models.items():
        batch_size = config.eval_batch_size if name == "dcsm" else 32
        evaluations = {
            suite: evaluate(model, bench, batch_size, progress=False)
            for suite, bench in suites.items()
            if bench.items
        }
        # metrics on its run; failure galleries of the final (test) evaluation only
        log_model_eval(model, basename(split_dir), evaluations, gallery_limit=12 if final else 0)
        results[name] = {s: r.summary()["accuracy"] for s, r in evaluations.items()}
    return results


def report(results: dict[str, Any], config: TrainDcsmConfig, facts: dict[str, Any]) -> str:
    lines = [
        f"# train_dcsm on {config.data or config.synthetic.world}, seeds {config.seeds}",
        "",
        f"Backbone: {facts['backbone']}.",
        "",
        f"## {config.eval_split} (final)",
        "",
        *mean_sd_table(results, table_columns(results, config.suites)),
    ]
    if config.select_split:
        lines += ["", f"## {config.select_split} (selection)", ""]
        lines += mean_sd_table(results["val"], config.suites)
    lines += [
        "",
        f"Feature cache: {facts['cache_rows']} rows in {facts['cache_seconds']:.1f} s "
        f"({facts['cache_rows_per_second']:.1f} rows/s), {facts['cache_dir']}.",
        f"Scorer training and evaluation, {len(config.seeds)} seeds x {config.train.steps} "
        f"steps: {facts['seconds']:.1f} s.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> dict[str, Any]:
    return run_pipeline(TrainDcsmConfig, run, argv, DEFAULT_CONFIG)


def run(config: TrainDcsmConfig) -> dict[str, Any]:
    import mlflow
    from safetensors.torch import load_file

    from components.models.checkpoint import save_checkpoint
    from components.models.clip import CLIP
    from components.models.dcsm import DCSM
    from components.models.features import cache_features, load_backbone

    init_ray()
    with (
        pipeline_run(config.experiment, "train_dcsm", to_dict(config)) as run,
        staged_dir(config.out) as out,  # out= a URI: files land here, uploaded at the end
    ):
        data = prepare_data(config)
        require_select_split(data, config.select_split)
        access = SplitAccess(data)
        spec, backbone_note = resolve_backbone(config)
        print(f"backbone: {backbone_note}", flush=True)
        features = cache_dir(config, data, spec)
        # caches are shared by runs with other out= folders; a rebuild replaces the folder
        with run_lock(parent(str(features))):
            card = cache_features(
                access.path(config.train_split, "train"),
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
        backbone = load_backbone(spec)
        cosine_model = CLIP(backbone).eval()
        cosine_results: dict[str, dict[str, float]] = {}  # frozen: the same for every seed

        def train_seed(seed: int) -> Any:
            trained = train(config, spec, features, run.info.run_id, out, seed)
            model = DCSM(backbone, **config.dcsm.model_options())
            model.load_head_state(load_file(str(trained / "model.safetensors")))
            remember_model_run(model, *model_run(trained))  # its evaluation goes to its run
            name = "checkpoint" if seed == config.seeds[0] else f"seed{seed}/checkpoint"
            save_checkpoint(
                model,
                out / "dcsm" / name,
                extra={"backbone": backbone_note, "features": str(features), "seed": seed},
            )
            return model.eval()

        def evaluate_seed(model: Any, split_dir: str | Path) -> dict[str, dict[str, float]]:
            if str(split_dir) not in cosine_results:
                cosine = evaluate_models(
                    config, {"cosine": cosine_model}, split_dir, access.in_final
                )
                cosine_results[str(split_dir)] = cosine["cosine"]
            return {
                **evaluate_models(config, {"dcsm": model}, split_dir, access.in_final),
                "cosine": cosine_results[str(split_dir)],
            }

        results = train_select_test(
            config.seeds, train_seed, evaluate_seed, access, config.select_split, config.eval_split
        )
        facts = {
            "backbone": backbone_note,
            "cache_dir": str(features),
            "cache_rows": card["rows"],
            "cache_seconds": card["seconds"],
            "cache_rows_per_second": card["rows_per_second"],
            "seconds": time.perf_counter() - started,
        }
        log_results(model_means(results))
        log_results(model_means(results["val"]), prefix="val.")
        access.write(out)
        text = report(results, config, facts)
        write_outputs(config.out, config, results, text)
    print(text)
    return results


if __name__ == "__main__":
    cli(main)
