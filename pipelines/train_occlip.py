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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from components.data.shards import shard_files, validate_schema
from components.data.splits import (
    TRAIN_SELECT_FINAL,
    SplitAccess,
    resolve_splits,
)
from components.data.synthetic_inputs import SyntheticData, training_shards
from components.data.worlds import data_split_roles, parser_for_data
from components.evaluation.seeds import model_means, train_select_test
from components.evaluation.suite_scores import seed_tables, split_suites, suite_accuracies
from components.evaluation.zeroshot import ZeroShotConfig, zero_shot_retention
from components.models.backbone import BackboneConfig
from components.models.occlip.occlip_options import OcclipOptions
from components.platform.cli import cli, run_pipeline
from components.platform.config import check, check_path, to_dict
from components.platform.runtime import init_ray
from components.platform.storage import (
    join,
    ray_paths,
    staged_dir,
)
from components.platform.tracking import log_results, pipeline_run, write_outputs
from components.training.loop import TrainConfig
from components.training.model_runs import check_before_ray, fit_model_run
from components.training.trainer import ScalingSettings, check_cluster_fits

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "train_occlip.yaml"
TRAIN_COLUMNS = ["image", "caption", "graph"]
EXTRA_COLUMNS = {"negclip": ["negatives"]}  # NegCLIP batches each row's hard-negative captions
SPLIT_PURPOSES = {**TRAIN_SELECT_FINAL, "train.val_split": "select"}  # data/splits.py
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
    # Model choice reads only this. auto: the data card's select split (val_heldout in a
    # world, val in build_shards output); "" = none. Final-role splits are refused.
    select_split: str = "auto"
    train: TrainConfig = field(default_factory=TrainConfig)
    scaling: ScalingSettings = field(default_factory=ScalingSettings)
    # The final table's split, read once after every choice. auto: the card's final split
    # (test_heldout in a world, test in build_shards output); "" = select only, no test read.
    eval_split: str = "auto"
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
        resolve_splits(self, data_split_roles(self.data, self.synthetic.world), SPLIT_PURPOSES)
        check_before_ray(
            self.data, self.synthetic, self.train_split, self.train, self.scaling, self.resume
        )


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


def train_one(config, name, dirs: dict[str, Any], parent_run_id, seed: int, out: Path) -> Path:
    """Fit one model for one seed with Ray Train; returns its final checkpoint directory
    (under the local ``out``; Ray's own run folder is ``config.out``/ray, URI or not)."""
    from components.parsing.stage import ParseStageConfig, parse_dataset

    train_dir, val_dir = dirs["train"], dirs["val"]  # val: None unless train.val_every
    files = shard_files(train_dir)
    paths, filesystem = ray_paths(files)  # one filesystem (None: local) for every read below
    columns = TRAIN_COLUMNS + EXTRA_COLUMNS.get(name, [])
    validate_schema(pq.read_schema(paths[0], filesystem=filesystem), str(files[0]), columns)
    dataset = read_rows(config, name, train_dir)
    if config.train_parser and name == "occlip":  # the paper trains on its parser's graphs
        # materialised: the row count check, the schema and training would each re-parse
        dataset = parse_dataset(dataset, ParseStageConfig(parser=config.train_parser)).materialize()
    train = replace(config.train, seed=seed)
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
        val_dataset=read_rows(config, name, val_dir) if val_dir else None,
        train_rows=sum(pq.read_metadata(p, filesystem=filesystem).num_rows for p in paths),
    )


def evaluate_checkpoint(
    config, checkpoint: Path, data: str | Path, split_dir: str | Path, final: bool = False
) -> dict[str, float]:
    """Accuracy of the positive over its negative, per suite, on one split directory (and,
    in the final evaluation only, on the public suites: they are test data)."""
    from components.models.checkpoint import load_checkpoint

    model = load_checkpoint(checkpoint).eval()
    if hasattr(model, "parser"):
        model.parser = parser_for_data(config.parser, data)
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

    names = MODELS[config.model]
    init_ray()
    check_cluster_fits(config.scaling)  # before the world build and the MLflow run
    with (
        pipeline_run(config.experiment, f"train_occlip-{config.model}", to_dict(config)) as run,
        staged_dir(config.out) as out,  # out= a URI: files land here, uploaded at the end
    ):
        data = training_shards(config.data, config.synthetic)
        access = SplitAccess(data, select_split=config.select_split)

        def train_seed(seed: int) -> dict[str, Path]:
            # each model's run hangs off the pipeline run, its seed a tag and in its name;
            # in-training checkpoint choice reads a select split, guarded like the rest
            read_val = config.train.val_every > 0
            val = access.path(config.train.val_split, "select") if read_val else None
            dirs = {"train": access.path(config.train_split, "train"), "val": val}
            return {n: train_one(config, n, dirs, run.info.run_id, seed, out) for n in names}

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
