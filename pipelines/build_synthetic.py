"""Build a synthetic world's shards with Ray Data.

python pipelines/build_synthetic.py world=clevr num_scenes=2000 coverage=0.5 seed=7 out=/tmp/w
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow

from components.config import load_config, to_dict
from components.data.build import build_synthetic
from components.data.synthetic import SyntheticSpec
from components.runtime import init_ray
from components.tracking import log_results, pipeline_run, write_outputs

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "build_synthetic.yaml"


@dataclass
class BuildSyntheticConfig:
    world: str = "clevr"
    num_scenes: int = 2000
    coverage: float = 0.7
    seed: int = 0
    image_size: int = 64
    rows_per_shard: int = 200
    world_overrides: dict[str, Any] = field(default_factory=dict)
    out: str = "datasets/clevr"
    experiment: str = "build_synthetic"


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
    config = load_config(BuildSyntheticConfig, argv, DEFAULT_CONFIG)
    spec = SyntheticSpec(
        config.world,
        config.seed,
        config.coverage,
        config.image_size,
        tuple(sorted(config.world_overrides.items())),
    )
    init_ray()
    with pipeline_run(config.experiment, f"{config.world}-s{config.seed}", to_dict(config)):
        card = build_synthetic(spec, config.num_scenes, config.out, config.rows_per_shard)
        results = {
            "build": {
                "scenes_per_s": sum(card["splits"].values()) / card["build"]["seconds"],
                **{f"{k}_scenes": v for k, v in card["splits"].items()},
            }
        }
        log_results(results)
        write_outputs(config.out, config, results, report(card))
        mlflow.log_artifact(str(Path(config.out) / "card.json"))
    print(report(card))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
