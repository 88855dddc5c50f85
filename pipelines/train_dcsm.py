"""Train a DCSM scorer on a frozen backbone's cached dense features and compare with its cosine.

    python pipelines/train_dcsm.py                # clevr_pairs, train_occlip's mean-pooled CLIP
    python pipelines/train_dcsm.py 'backbone.checkpoint=""' backbone.name=ViT-B-16 backbone.pretrained=openai
    python pipelines/train_dcsm.py --config pipelines/configs/smoke/train_dcsm.yaml

Steps: build (or reuse) the synthetic shards with train_occlip's naming; resolve the backbone
(components/training/frozen_backbone.py: a bindkit checkpoint, an open_clip model +
pretrained tag/path, or, when the checkpoint is missing, a random-init backbone saved once);
cache dense features once with Ray Data; train the scorer on the cache with the shared Ray
Train loop once per seed (``seeds``, each a nested MLflow run); graft each head onto the
backbone; score DCSM and the backbone's pooled cosine (the CLIP baseline) on
``select_split`` per seed, then on ``eval_split`` once for the final mean +- sd table.
"""

from __future__ import annotations

import components.platform.help_gate  # noqa: F401  (answers --help before torch and Ray load)

# isort: split
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from components.data.splits import SplitAccess, resolve_splits
from components.data.synthetic_inputs import SyntheticData, training_shards
from components.data.worlds import data_split_roles
from components.evaluation.seeds import model_means, train_select_test
from components.evaluation.suite_scores import seed_tables, split_suites, suite_accuracies
from components.models.backbone import BackboneConfig
from components.models.dcsm.options import DcsmOptions
from components.platform.cli import cli, run_pipeline
from components.platform.config import check, check_path, to_dict
from components.platform.runtime import init_ray
from components.platform.storage import child, join, ray_paths, staged_dir
from components.platform.tracking import (
    log_results,
    model_run,
    pipeline_run,
    remember_model_run,
    write_outputs,
)
from components.training.feature_cache import feature_files
from components.training.frozen_backbone import backbone_config, cached_features, resolve_backbone
from components.training.loop import TrainConfig
from components.training.model_runs import check_before_ray, fit_model_run
from components.training.trainer import ScalingSettings, check_cluster_fits

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "train_dcsm.yaml"
TRAIN_OCCLIP_DENSE = "outputs/train_occlip_dense/clip/checkpoint"  # train_dcsm.yaml says how


@dataclass
class TrainDcsmConfig:
    # The frozen backbone: checkpoint (a bindkit checkpoint or URI, e.g. train_occlip's
    # mean-pooled CLIP) or, with checkpoint empty, name + pretrained (image_size 0 = its own)
    backbone: BackboneConfig = field(
        default_factory=lambda: BackboneConfig(checkpoint=TRAIN_OCCLIP_DENSE)
    )
    fallback: bool = True  # backbone.checkpoint missing: a random-init backbone.name (says so)
    data: str = ""  # shard folder or URI with train/ and eval_split/; empty = synthetic
    # world built when data is empty
    synthetic: SyntheticData = field(default_factory=SyntheticData)
    features_root: str = ""  # folder or URI of feature caches; empty = <data>/features
    feature_actors: int = 1  # actors computing the dense feature cache
    feature_batch_size: int = 64  # rows per feature-cache batch
    dcsm: DcsmOptions = field(default_factory=DcsmOptions)
    train: TrainConfig = field(default_factory=TrainConfig)
    scaling: ScalingSettings = field(default_factory=ScalingSettings)
    eval_split: str = "auto"  # the final table's split, read once (auto: the card's; "" = none)
    # Hard-negative kinds of the eval split, and public suites "sugarcrepe:ROOT", ...
    # (components.evaluation.loaders.suites), read in the final evaluation only.
    suites: list[str] = field(
        default_factory=lambda: ["swap_att", "swap_rel", "replace_rel", "negation"]
    )
    eval_limit: int = 0  # items per suite, 0 = all
    eval_batch_size: int = 1  # items per DCSM score call (off-block pairs are wasted work)
    seed: int = 0  # seed of a random-init backbone's weights (fallback)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])  # one scorer run per seed
    select_split: str = "auto"  # per-seed choice (auto: the data card's select split; "" = none)
    train_split: str = "train"  # split the scorer trains on (build_shards: train/val/test)
    out: str = "outputs/train_dcsm"  # output folder or URI: checkpoint, results, report
    experiment: str = "train_dcsm"  # MLflow experiment name

    def validate(self) -> None:
        check(self.eval_limit >= 0, "eval_limit", self.eval_limit, "an integer >= 0 (0 = all)")
        check(self.eval_batch_size > 0, "eval_batch_size", self.eval_batch_size, "an integer > 0")
        if self.data:
            check_path("data", self.data, "dir")
        resolve_splits(self, data_split_roles(self.data, self.synthetic.world))
        check_before_ray(self.data, self.synthetic, self.train_split, self.train, self.scaling)


def train(
    config: TrainDcsmConfig,
    spec: dict[str, Any],
    features: str | Path,
    parent_run_id: str,
    out: Path,
    seed: int = 0,
) -> Path:
    """Fit the scorer for one seed on the feature cache; its checkpoint dir under ``out``."""
    import ray.data

    paths, filesystem = ray_paths(feature_files(features))
    train_config = replace(config.train, seed=seed)
    return fit_model_run(
        {
            "name": "dcsm",
            "backbone": backbone_config(spec),
            "load_pretrained": False,
            **config.dcsm.model_options(),
        },
        train_config,
        ray.data.read_parquet(paths, filesystem=filesystem),
        config.scaling,
        run_name=f"dcsm-seed{seed}",
        parent_run_id=parent_run_id,
        params={**to_dict(config), "train": asdict(train_config)},
        tags={"seed": seed},
        storage_path=join(config.out, "ray"),
        target=out / "dcsm" / f"seed{seed}" / "trained",
    )


def evaluate_model(
    config: TrainDcsmConfig, name: str, model: Any, split_dir: str | Path, final: bool
) -> dict[str, float]:
    """Accuracy of the positive over its hard negative per suite on one split (and, in the
    final evaluation only, the public suites); metrics and galleries go to the model's run."""
    suites = split_suites(split_dir, config.suites, config.eval_limit, final)
    batch_size = config.eval_batch_size if name == "dcsm" else 32
    return suite_accuracies(model, model, suites, split_dir, batch_size, final)


def report(results, config: TrainDcsmConfig, note: str, features, card, seconds: float) -> str:
    """The final and selection tables, what the backbone was, what the cache and fits cost."""
    lines = [
        f"# train_dcsm on {config.data or config.synthetic.world}, seeds {config.seeds}",
        "",
        f"Backbone: {note}.",
        "",
        *seed_tables(results, config.suites, config.eval_split, config.select_split),
        "",
        f"Feature cache: {card['rows']} rows in {card['seconds']:.1f} s "
        f"({card['rows_per_second']:.1f} rows/s), {features}.",
        f"Scorer training and evaluation, {len(config.seeds)} seeds x {config.train.steps} "
        f"steps: {seconds:.1f} s.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> dict[str, Any]:
    return run_pipeline(TrainDcsmConfig, run, argv, DEFAULT_CONFIG)


def run(config: TrainDcsmConfig) -> dict[str, Any]:
    import mlflow
    from safetensors.torch import load_file

    from components.models.checkpoint import save_checkpoint
    from components.models.clip import CLIP
    from components.models.dcsm.dcsm import DCSM
    from components.models.loading import load_backbone

    init_ray()
    check_cluster_fits(config.scaling)  # before the world build and the MLflow run
    with (
        pipeline_run(config.experiment, "train_dcsm", to_dict(config)) as run,
        staged_dir(config.out) as out,  # out= a URI: files land here, uploaded at the end
    ):
        data = training_shards(config.data, config.synthetic)
        access = SplitAccess(data, select_split=config.select_split)
        spec, backbone_note = resolve_backbone(
            config.backbone, config.fallback, config.seed, config.out
        )
        print(f"backbone: {backbone_note}", flush=True)
        features, card = cached_features(
            spec,
            access.path(config.train_split, "train"),
            child(config.features_root) if config.features_root else child(data, "features"),
            config.dcsm.context_length,
            config.feature_actors,
            config.feature_batch_size,
        )
        mlflow.log_metrics({f"cache.{k}": card[k] for k in ("seconds", "rows", "rows_per_second")})
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
            final, key = access.in_final, str(split_dir)
            if key not in cosine_results:
                cosine_results[key] = evaluate_model(
                    config, "cosine", cosine_model, split_dir, final
                )
            dcsm = evaluate_model(config, "dcsm", model, split_dir, final)
            return {"dcsm": dcsm, "cosine": cosine_results[key]}

        results = train_select_test(
            config.seeds, train_seed, evaluate_seed, access, config.select_split, config.eval_split
        )
        seconds = time.perf_counter() - started
        log_results(model_means(results))
        log_results(model_means(results["val"]), prefix="val.")
        access.write(out)
        text = report(results, config, backbone_note, features, card, seconds)
        write_outputs(config.out, config, results, text)
    print(text)
    return results


if __name__ == "__main__":
    cli(main)
