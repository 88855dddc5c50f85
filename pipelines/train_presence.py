"""Train ViT backbones that must bind (object presence) or need not (feature presence).

    python pipelines/train_presence.py                          # both, tiny ViT, ColorShape 128 px
    python pipelines/train_presence.py targets=[objects] train.steps=3000
    python pipelines/probe_binding.py backbone.checkpoint=outputs/train_presence/objects/checkpoint \\
        data.image_size=128 data.num_scenes=6000                # then probe each one
    python pipelines/train_presence.py --config pipelines/configs/smoke/train_presence.yaml

One model per supervision in ``targets`` (components/models/presence.py): ``objects`` is a
multi-label head over the world's objects (colour x shape conjunctions, the row's
object_code), which requires binding; ``features`` one over individual values (colours and
shapes, the row's feature_code), which does not. Both train through the shared Ray Train
loop (components/training/) from the same random init, which is also written to
out/init/checkpoint: the random-init control with the same architecture and image size.
Checkpoints are bindkit checkpoints, so ``probe_binding backbone.checkpoint=DIR`` probes their
backbone. The built world is the one ``probe_binding`` builds for the same data settings.
This is its own pipeline, not a train_occlip config: train_occlip trains on captions and
scores caption hard negatives, neither of which a presence classifier has.
"""

from __future__ import annotations

import components.platform.help_gate  # noqa: F401  (answers --help before torch and Ray load)

# isort: split
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from components.data.build import check_synthetic_options, probe_world
from components.data.shards import shard_files
from components.data.splits import SplitAccess, resolve_splits
from components.data.worlds import data_split_roles
from components.models.backbone import BackboneConfig
from components.platform.cli import cli, run_pipeline
from components.platform.config import check, check_path, to_dict
from components.platform.runtime import init_ray
from components.platform.storage import child, join, ray_paths, staged_dir
from components.platform.tracking import log_results, pipeline_run, write_outputs
from components.training.loop import TrainConfig
from components.training.model_runs import fit_model_run
from components.training.trainer import ScalingSettings, check_cluster_fits

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "train_presence.yaml"
TARGETS = ("objects", "features")
COLUMNS = ["image", "object_code", "feature_code"]


@dataclass
class PresenceData:
    """The scenes to train on: an existing shard directory, or a synthetic world to build."""

    data: str = ""  # a shard directory with train/ (and val/, test/); empty = build
    world: str = "colorshape"  # world built when data is empty
    num_scenes: int = 6000  # scenes of the built world
    seed: int = 0  # seed of the built world
    image_size: int = 128  # pixels (ColorShape objects are image_size / 16 px wide)
    splits: dict[str, float] = field(default_factory=dict)  # scene shares; {} = the world's
    root: str = "datasets"  # folder the built world is cached under

    def validate(self) -> None:
        if self.data:
            check_path("data", self.data, "dir")
        else:
            check_synthetic_options(self.world, 1.0, self.image_size, self.num_scenes)


@dataclass
class TrainPresenceConfig:
    # one model per supervision: objects (needs binding) | features (does not)
    targets: list[str] = field(default_factory=lambda: list(TARGETS))
    # the backbone trained from scratch; image_size must match data.image_size
    backbone: BackboneConfig = field(default_factory=lambda: BackboneConfig(image_size=128))
    data: PresenceData = field(default_factory=PresenceData)
    train: TrainConfig = field(default_factory=TrainConfig)
    scaling: ScalingSettings = field(default_factory=ScalingSettings)
    eval_split: str = "auto"  # final accuracy's split, read once after training (auto: card's)
    out: str = "outputs/train_presence"  # output folder or URI: checkpoints, results, report
    experiment: str = "train_presence"  # MLflow experiment name

    def validate(self) -> None:
        check(
            not self.backbone.checkpoint,
            "backbone.checkpoint",
            self.backbone.checkpoint,
            "empty: models train from backbone.name and backbone.pretrained",
        )
        check(
            bool(self.targets) and set(self.targets) <= set(TARGETS),
            "targets",
            self.targets,
            f"a non-empty list of {', '.join(TARGETS)}",
        )
        roles = data_split_roles(self.data.data, self.data.world)
        resolve_splits(self, roles, {"train.val_split": "select", "eval_split": "final"})


def prepare_data(data: PresenceData) -> Path | str:
    """The shard directory, building the world under the name ``probe_binding`` uses for
    the same settings, so a probe of the trained backbone reuses the build."""
    if data.data:
        return child(data.data)
    return probe_world(
        data.root, data.world, data.num_scenes, data.seed, data.image_size, data.splits
    )


def label_count(split_dir: Path | str, target: str) -> int:
    """The head's width: the length of the first row's object_code or feature_code."""
    from components.models.presence import TARGET_COLUMNS

    column = TARGET_COLUMNS[target]
    paths, filesystem = ray_paths(shard_files(split_dir))
    first = pq.ParquetFile(paths[0], filesystem=filesystem).read_row_group(0, columns=[column])
    return len(first.column(column)[0].as_py())


def model_spec(config: TrainPresenceConfig, target: str, num_labels: int) -> dict[str, Any]:
    return {
        "name": "presence",
        "backbone": config.backbone.spec(),
        "target": target,
        "num_labels": num_labels,
    }


def read_split(split_dir: Path | str):
    """A Ray Dataset of a split's rows, only the columns a presence model reads."""
    import ray.data

    paths, filesystem = ray_paths(shard_files(split_dir))
    return ray.data.read_parquet(paths, filesystem=filesystem).select_columns(COLUMNS)


def train_one(config, target: str, access: SplitAccess, parent_run_id: str, out: Path) -> Path:
    """Fit one supervision with the shared Ray Train loop; returns its checkpoint directory."""
    train_dir = access.path("train", "train")
    spec = model_spec(config, target, label_count(train_dir, target))
    val_every = config.train.val_every  # in-training checkpoint choice reads a select split
    val = read_split(access.path(config.train.val_split, "select")) if val_every else None
    return fit_model_run(
        spec,
        config.train,
        read_split(train_dir),
        config.scaling,
        run_name=target,
        parent_run_id=parent_run_id,
        params=to_dict(config),
        tags={"model": "presence", "target": target},
        storage_path=join(config.out, "ray"),
        target=out / target / "checkpoint",
        ray_run_name=f"presence-{target}",
        val_dataset=val,
    )


def save_init(config: TrainPresenceConfig, target: str, num_labels: int, out: Path) -> Path:
    """The untrained model as the training loop builds it (same seed): the random-init
    control, probed with the same architecture and image size as the trained ones."""
    import torch

    from components.models.checkpoint import save_checkpoint
    from components.models.registry import create_model

    torch.manual_seed(config.train.seed)  # the loop seeds rank 0 with train.seed too
    model = create_model(**model_spec(config, target, num_labels))
    return save_checkpoint(model, out / "init" / "checkpoint", extra={"step": 0})


def evaluate(checkpoint: Path, split_dir: Path | str, batch_size: int = 64) -> dict[str, float]:
    """Mean BCE, label accuracy and exact (all labels right) accuracy on one split."""
    import torch

    from components.models.checkpoint import load_checkpoint

    model = load_checkpoint(checkpoint).eval()
    paths, filesystem = ray_paths(shard_files(split_dir))
    rows = pq.read_table(paths, columns=COLUMNS, filesystem=filesystem).to_pylist()
    totals: dict[str, float] = {}
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            _, parts = model.loss(model.collate(chunk))
            for key, value in parts.items():
                totals[key] = totals.get(key, 0.0) + value * len(chunk)
    return {key: value / len(rows) for key, value in totals.items()}


def report(results: dict[str, Any], config: TrainPresenceConfig) -> str:
    lines = [
        f"# train_presence on {config.data.data or config.data.world} "
        f"({config.backbone.name}, {config.backbone.image_size or 'own'} px)",
        "",
        f"## {config.eval_split}",
        "",
        "| supervision | BCE | label accuracy | exact accuracy | checkpoint |",
        "|---|---|---|---|---|",
    ]
    for target, r in results.items():
        lines.append(
            f"| {target} | {r['loss']:.4f} | {r['label_accuracy']:.3f} | "
            f"{r['exact_accuracy']:.3f} | {r['checkpoint']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> dict[str, Any]:
    return run_pipeline(TrainPresenceConfig, run, argv, DEFAULT_CONFIG)


def run(config: TrainPresenceConfig) -> dict[str, Any]:
    if config.backbone.image_size and config.backbone.image_size != config.data.image_size:
        raise ValueError(
            f"backbone.image_size={config.backbone.image_size} but data.image_size="
            f"{config.data.image_size}: the backbone would resize the scenes it is trained on"
        )
    init_ray()
    check_cluster_fits(config.scaling)  # before the world build and the MLflow run
    with (
        pipeline_run(config.experiment, "train_presence", to_dict(config)) as parent,
        staged_dir(config.out) as out,
    ):
        data = prepare_data(config.data)
        first = config.targets[0]
        init = save_init(config, first, label_count(child(data, "train"), first), out)
        access = SplitAccess(data)  # every target trains before the one final read
        trained = {t: train_one(config, t, access, parent.info.run_id, out) for t in config.targets}
        access.final()
        results: dict[str, Any] = {
            target: {**evaluate(c, access.path(config.eval_split, "final")), "checkpoint": str(c)}
            for target, c in trained.items()
        }
        access.write(out)
        log_results(results)  # numbers only: the checkpoint paths are skipped
        payload = {**results, "init_checkpoint": str(init)}
        text = report(results, config)
        write_outputs(config.out, config, payload, text)
    print(text)
    return payload


if __name__ == "__main__":
    cli(main)
