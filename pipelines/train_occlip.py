"""Train OC-CLIP and a CLIP baseline on the same data and backbone, then compare binding.

    python pipelines/train_occlip.py                      # synthetic clevr_pairs, both models
    python pipelines/train_occlip.py model=occlip data=datasets/my_shards train.steps=5000
    ray job submit --working-dir . -- python pipelines/train_occlip.py scaling.num_workers=8

Default: builds the synthetic world if missing (coverage 0.7), trains both models from
scratch on a tiny ViT once per seed (``seeds``, each a nested MLflow run), scores every seed
on ``select_split`` (val_heldout: held-out objects, scenes disjoint from the test), then reads
``eval_split`` (test_heldout) once for the final table: mean +- sd over seeds.
``model=negclip`` is CLIP with the shards' hard-negative captions in its batch.
"""

from __future__ import annotations

import components.platform.help_gate  # noqa: F401  (answers --help before torch and Ray load)

# isort: split
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from components.data.shards import shard_files, validate_schema
from components.data.splits import SplitAccess, require_select_split
from components.data.synthetic_inputs import SyntheticData, training_shards
from components.evaluation.seeds import model_means, train_select_test
from components.evaluation.suite_scores import seed_tables, split_suites, suite_accuracies
from components.evaluation.zeroshot import ZeroShotConfig, zero_shot_retention
from components.models.backbone import BackboneConfig
from components.models.occlip.occlip_options import OcclipOptions
from components.platform.cli import cli, run_pipeline
from components.platform.config import check, check_path, to_dict
from components.platform.runtime import init_ray
from components.platform.storage import (
    child,
    exists,
    join,
    parent,
    ray_paths,
    read_bytes,
    staged_dir,
)
from components.platform.tracking import log_results, pipeline_run, write_outputs
from components.training.loop import TrainConfig
from components.training.model_runs import fit_model_run
from components.training.trainer import ScalingSettings

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "train_occlip.yaml"
TRAIN_COLUMNS = ["image", "caption", "graph"]
EXTRA_COLUMNS = {"negclip": ["negatives"]}  # NegCLIP batches each row's hard-negative captions
MODELS = {  # model= value -> the models trained, in order
    "occlip": ["occlip"],
    "clip": ["clip"],
    "negclip": ["negclip"],
    "both": ["occlip", "clip"],
    "all": ["occlip", "clip", "negclip"],
}


@dataclass
class TrainOcclipConfig:
    model: str = "both"  # occlip | clip | negclip | both (occlip, clip) | all (+ negclip)
    # name, pretrained (tag | local file: alone it loads), force_quick_gelu, lock_* (backbone.py)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    zeroshot: ZeroShotConfig = field(default_factory=ZeroShotConfig)  # top-1 before/after
    data: str = ""  # shard folder or URI with train/ and test_heldout/; empty = synthetic
    synthetic: SyntheticData = field(default_factory=SyntheticData)
    parser: str = "template"  # how OC-CLIP parses evaluation captions
    train_parser: str = ""  # "" = the shards' graphs; a parser name re-parses training captions
    occlip: OcclipOptions = field(default_factory=OcclipOptions)  # OC-CLIP options, typed
    negclip: dict[str, Any] = field(default_factory=dict)  # NegCLIP options (negclip.py)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])  # one training run per seed
    train_split: str = "train"  # split trained on (build_shards writes train/val/test)
    select_split: str = "val_heldout"  # model choice reads only this ("" = none)
    train: TrainConfig = field(default_factory=TrainConfig)
    scaling: ScalingSettings = field(default_factory=ScalingSettings)
    eval_split: str = "test_heldout"  # split the final table is measured on
    # Hard-negative kinds of the eval split, and public suites "sugarcrepe:ROOT",
    # "whatsup/controlled_a:ROOT", ... (components.evaluation.loaders.suites), final only.
    suites: list[str] = field(
        default_factory=lambda: ["swap_att", "swap_obj", "swap_rel", "replace_rel", "negation"]
    )
    eval_limit: int = 0  # items per suite, 0 = all
    resume: str = ""  # "": fresh; "auto": continue out/ray/<model>; else a checkpoint dir
    out: str = "outputs/train_occlip"  # output folder or URI: checkpoints, results, report
    experiment: str = "train_occlip"  # MLflow experiment name

    def validate(self) -> None:
        check(self.model in MODELS, "model", self.model, f"one of {', '.join(MODELS)}")
        check(
            not self.backbone.checkpoint,
            "backbone.checkpoint",
            self.backbone.checkpoint,
            "empty: models train from backbone.name and backbone.pretrained",
        )
        check(bool(self.seeds), "seeds", self.seeds, "at least one seed")
        check(self.eval_limit >= 0, "eval_limit", self.eval_limit, "an integer >= 0 (0 = all)")
        if self.data:
            check_path("data", self.data, "dir")


def model_spec(config: TrainOcclipConfig, name: str) -> dict[str, Any]:
    """``create_model``'s arguments for one compared model: the shared backbone, its options."""
    options = {"occlip": asdict(config.occlip), "negclip": config.negclip}.get(name, {})
    return {"name": name, "backbone": config.backbone.spec(), **options}


def checkpoint_dir(out: Path, config: TrainOcclipConfig, name: str, seed: int) -> Path:
    """out/<name>/checkpoint for the first seed (what other pipelines read), else seed<s>/.

    ``out`` is the local folder outputs are written to (``config.out``, or its staging
    folder when ``config.out`` is a URI)."""
    if seed == config.seeds[0]:
        return out / name / "checkpoint"
    return out / name / f"seed{seed}" / "checkpoint"


def read_rows(config: TrainOcclipConfig, name: str, split_dir: str | Path):
    """A Ray Dataset of the columns ``name`` trains on (NegCLIP: negatives' captions too)."""
    import ray.data

    from components.models.negclip import negative_texts

    columns = TRAIN_COLUMNS + EXTRA_COLUMNS.get(name, [])
    paths, filesystem = ray_paths(shard_files(split_dir))
    dataset = ray.data.read_parquet(paths, filesystem=filesystem).select_columns(columns)
    if "negatives" in columns:  # NegCLIP batches the negatives' captions, not their images
        dataset = dataset.map_batches(negative_texts, batch_format="pyarrow")
    return dataset


def train_one(config, name, train_dir: str | Path, parent_run_id, seed: int, out: Path) -> Path:
    """Fit one model for one seed with Ray Train; returns its final checkpoint directory
    (under the local ``out``; Ray's own run folder is ``config.out``/ray, URI or not)."""
    from components.parsing.stage import ParseStageConfig, parse_dataset

    files = shard_files(train_dir)
    paths, filesystem = ray_paths(files)  # one filesystem (None: local) for every read below
    columns = TRAIN_COLUMNS + EXTRA_COLUMNS.get(name, [])
    validate_schema(pq.read_schema(paths[0], filesystem=filesystem), str(files[0]), columns)
    dataset = read_rows(config, name, train_dir)
    if config.train_parser and name == "occlip":  # the paper trains on its parser's graphs
        # materialised: the row count check, the schema and training would each re-parse
        dataset = parse_dataset(dataset, ParseStageConfig(parser=config.train_parser)).materialize()
    train = replace(config.train, seed=seed)
    val_dir = child(parent(str(train_dir)), train.val_split)
    return fit_model_run(
        model_spec(config, name),
        train,
        dataset,
        config.scaling,
        run_name=f"{name}-seed{seed}",
        parent_run_id=parent_run_id,
        params={**to_dict(config), "train": asdict(train)},
        tags={"model": name, "seed": seed},
        storage_path=join(config.out, "ray"),
        target=checkpoint_dir(out, config, name, seed),
        resume=config.resume or None,
        # checkpoint selection reads the val split only
        val_dataset=read_rows(config, name, val_dir) if train.val_every else None,
        train_rows=sum(pq.read_metadata(p, filesystem=filesystem).num_rows for p in paths),
    )


def evaluate_checkpoint(
    config, checkpoint: Path, data: str | Path, split_dir: str | Path, final: bool = False
) -> dict[str, float]:
    """Accuracy of the positive over its negative, per suite, on one split directory (and,
    in the final evaluation only, on the public suites: they are test data)."""
    from components.data.worlds import template_parser_options
    from components.models.checkpoint import load_checkpoint
    from components.parsing.registry import get_parser

    model = load_checkpoint(checkpoint).eval()
    if hasattr(model, "parser"):
        card_path = str(child(data, "card.json"))
        card = json.loads(read_bytes(card_path)) if exists(card_path) else {}
        world = card.get("world")  # own data (build_shards) has no world
        options = template_parser_options(world) if config.parser == "template" and world else {}
        model.parser = get_parser(config.parser, **options)
    suites = split_suites(split_dir, config.suites, config.eval_limit, final)
    return suite_accuracies(model, checkpoint, suites, split_dir, 16, final)


def report(results: dict[str, Any], config: TrainOcclipConfig) -> str:
    """Test table (read once) and the validation table model choice used, mean +- sd."""
    title = f"# train_occlip on {config.data or config.synthetic.world}, seeds {config.seeds}"
    tables = seed_tables(results, config.suites, config.eval_split, config.select_split)
    return "\n".join([title, "", *tables]) + "\n"


def main(argv: list[str]) -> dict[str, Any]:
    return run_pipeline(TrainOcclipConfig, run, argv, DEFAULT_CONFIG)


def run(config: TrainOcclipConfig) -> dict[str, Any]:
    import mlflow

    names = MODELS[config.model]
    init_ray()
    with (
        pipeline_run(config.experiment, f"train_occlip-{config.model}", to_dict(config)) as run,
        staged_dir(config.out) as out,  # out= a URI: files land here, uploaded at the end
    ):
        data = training_shards(config.data, config.synthetic)
        require_select_split(data, config.select_split)
        access = SplitAccess(data)

        def train_seed(seed: int) -> dict[str, Path]:
            with mlflow.start_run(
                run_name=f"seed{seed}", nested=True, parent_run_id=run.info.run_id
            ) as seed_run:
                mlflow.log_param("seed", seed)
                train_dir = access.path(config.train_split, "train")
                return {
                    n: train_one(config, n, train_dir, seed_run.info.run_id, seed, out)
                    for n in names
                }

        def evaluate_seed(checkpoints: dict[str, Path], split_dir: str | Path) -> dict[str, dict]:
            return {
                n: evaluate_checkpoint(config, c, data, split_dir, access.in_final)
                for n, c in checkpoints.items()
            }

        results = train_select_test(
            config.seeds, train_seed, evaluate_seed, access, config.select_split, config.eval_split
        )
        log_results(model_means(results))
        log_results(model_means(results["val"]), prefix="val.")
        access.write(out)
        text = report(results, config)
        if config.zeroshot.root:  # the paper's "fine-tuning keeps zero-shot accuracy" check
            first = {n: checkpoint_dir(out, config, n, config.seeds[0]) for n in names}
            top1 = zero_shot_retention(config.backbone.spec(), first, config.zeroshot)
            log_results({"zeroshot_top1": top1})
            text += f"\nZero-shot top-1 on {config.zeroshot.root}: {top1}\n"
        write_outputs(config.out, config, results, text)
    print(text)
    return results


if __name__ == "__main__":
    cli(main)
