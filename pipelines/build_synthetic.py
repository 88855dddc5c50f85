"""Build a synthetic world's shards with Ray Data.

python pipelines/build_synthetic.py world=clevr num_scenes=2000 coverage=0.5 seed=7 out=/tmp/w
"""

from __future__ import annotations

import components.platform.help_gate  # noqa: F401  (answers --help before torch and Ray load)

# isort: split
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow

from components.data.build import build_synthetic, check_synthetic_options, claim_output
from components.data.synthetic import SyntheticSpec
from components.platform.cli import cli, run_pipeline
from components.platform.config import check, to_dict
from components.platform.runtime import init_ray
from components.platform.tracking import log_results, pipeline_run, write_outputs

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "build_synthetic.yaml"


@dataclass
class BuildSyntheticConfig:
    """A synthetic world rendered into Parquet shards with a dataset card."""

    world: str = "clevr"  # world name (datasets/NAME.yaml) or a world spec YAML path
    num_scenes: int = 2000  # scenes over all splits (split fractions come from the world)
    coverage: float = 0.7  # fraction of concept combinations seen in training, in (0, 1]
    seed: int = 0  # seeds the coverage split, the scenes and their negatives
    image_size: int = 64  # rendered image side in pixels, 16..1024
    rows_per_shard: int = 200  # scenes per Parquet shard (one Ray task each)
    world_overrides: dict[str, Any] = field(default_factory=dict)  # world spec keys to replace
    out: str = "datasets/clevr"  # output folder (local path or URI); holds manifest.json
    overwrite: bool = False  # true: empty an out= built with other settings and rebuild
    experiment: str = "build_synthetic"  # MLflow experiment name

    def validate(self) -> None:
        check_synthetic_options(
            self.world, self.coverage, self.image_size, self.num_scenes, self.rows_per_shard
        )
        check(bool(self.experiment), "experiment", self.experiment, "a non-empty name")


def report(card: dict) -> str:
    lines = [
        f"# {card['world']}: {sum(card['splits'].values())} scenes",
        "",
        f"seed {card['seed']}, coverage {card['coverage']}, "
        f"{card['num_objects']} objects ({len(card['heldout_objects'])} held out), "
        f"{card['image_size']} px, built in {card['build']['seconds']:.1f} s",
        "",
        "| split | scenes | negatives |",
        "|---|---|---|",
    ]
    for split, size in card["splits"].items():
        negatives = ", ".join(f"{k} {v}" for k, v in card["negatives"][split].items())
        lines.append(f"| {split} | {size} | {negatives} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> dict:
    return run_pipeline(BuildSyntheticConfig, run, argv, DEFAULT_CONFIG)


def run(config: BuildSyntheticConfig) -> dict:
    spec = SyntheticSpec(
        config.world,
        config.seed,
        config.coverage,
        config.image_size,
        tuple(sorted(config.world_overrides.items())),
    )
    # A refused out= (built with other settings) stops here: no Ray, no MLflow run.
    claim_output(spec, config.num_scenes, config.out, config.rows_per_shard, config.overwrite)
    init_ray()
    with pipeline_run(config.experiment, f"{config.world}-s{config.seed}", to_dict(config)):
        # out= is claimed (overwrite done above): the build resumes or fills it
        card = build_synthetic(spec, config.num_scenes, config.out, config.rows_per_shard)
        results = {
            "build": {
                "scenes_per_s": sum(card["splits"].values()) / card["build"]["seconds"],
                **{f"{k}_scenes": v for k, v in card["splits"].items()},
            }
        }
        log_results(results)
        write_outputs(config.out, config, results, report(card))
        mlflow.log_dict(card, "card.json")
    print(report(card))
    return results


if __name__ == "__main__":
    cli(main)
