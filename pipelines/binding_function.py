"""What binding function does a backbone compute? (arXiv 2605.31503, asked of any backbone)

    python pipelines/binding_function.py                                  # random-init tiny ViT
    python pipelines/binding_function.py backbone.checkpoint=outputs/train_occlip/occlip/checkpoint
    python pipelines/binding_function.py backbone.name=ViT-B-32 backbone.pretrained=openai
    python pipelines/binding_function.py --config pipelines/configs/smoke/binding_function.yaml

Renders every ordered two-object scene of a world at a fixed layout (slot 1 left, slot 2
right), embeds each with the backbone's pooled image embedding (the binding function
f(o_1, o_2)), then fits the additive Level I (objects) / Level II (concepts) decompositions,
targeted removal, and the approximator families on scenes of seen objects, scored through
linear probes on scenes of held-out objects (components/probes/backbone_binding.py).
Writes config.yaml, results.json, report.md to out/, all logged to MLflow.
"""

from __future__ import annotations

import components.platform.help_gate  # noqa: F401  (answers --help before torch and Ray load)

# isort: split
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.models.backbone import BackboneConfig
from components.platform.cli import cli, run_pipeline
from components.platform.config import check, check_path, to_dict
from components.platform.tracking import log_results, pipeline_run, write_outputs
from components.probes.complexity import ComplexityConfig
from components.probes.report import backbone_label

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "binding_function.yaml"


@dataclass
class BindingFunctionConfig:
    # the backbone analysed: name + pretrained ("" = random init, seeded by ``seed``), or
    # checkpoint (a trained model's .backbone)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    world: str = "clevr_pairs"  # world whose ordered two-object scenes are rendered
    image_size: int = 0  # pixels rendered (the backbone resizes); 0 = the backbone's own
    seen_fraction: float = 0.7  # share of objects the approximators are fitted on
    seed: int = 0  # seen-object draw, random init, probe splits
    complexity: ComplexityConfig = field(default_factory=ComplexityConfig)
    out: str = "outputs/binding_function"  # output folder: config, results, report
    experiment: str = "binding_function"  # MLflow experiment name

    def validate(self) -> None:
        check(0 < self.seen_fraction < 1, "seen_fraction", self.seen_fraction, "in (0, 1)")
        check(self.image_size >= 0, "image_size", self.image_size, "an integer >= 0")
        if self.backbone.checkpoint:
            check_path("backbone.checkpoint", self.backbone.checkpoint, "dir")


def report(results: dict[str, Any], config: BindingFunctionConfig) -> str:
    """Level I/II R^2, targeted removal and the approximators as markdown tables."""
    lines = [
        f"# binding_function: {backbone_label(config.backbone)} on {config.world}",
        "",
        f"{results['num_scenes']} ordered two-object scenes at {results['image_size']} px, "
        f"{len(results['seen_objects'])} of {results['num_objects']} objects seen.",
        "",
        f"Additive R^2: Level I (objects) {results['level1_r2']:.3f}, "
        f"Level II (concepts) {results['level2_r2']:.3f}",
        "",
        "## Targeted removal (held-out probe accuracy, 40/60 scene split)",
        "",
        "| embedding | concept_acc | object_acc |",
        "|---|---|---|",
    ]
    for name, scores in results["targeted_removal"].items():
        lines.append(f"| {name} | {scores['concept_acc']:.3f} | {scores['object_acc']:.3f} |")
    lines += [
        "",
        "## Approximators (fitted on seen-object scenes, scored on held-out ones)",
        "",
        "| approximator | r2_train | r2_test | concept_acc | object_acc |",
        "|---|---|---|---|---|",
    ]
    for name, scores in results["complexity"].items():
        r2 = [f"{scores[k]:.3f}" if k in scores else "-" for k in ("r2_train", "r2_test")]
        lines.append(
            f"| {name} | {r2[0]} | {r2[1]} | {scores['concept_acc']:.3f} | "
            f"{scores['object_acc']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> dict[str, Any]:
    return run_pipeline(BindingFunctionConfig, run, argv, DEFAULT_CONFIG)


def run(config: BindingFunctionConfig) -> dict[str, Any]:
    import torch

    from components.data.worlds import get_world
    from components.models.loading import load_backbone
    from components.probes.backbone_binding import backbone_binding_function

    world = get_world(config.world)
    torch.manual_seed(config.seed)  # the random-init backbone is a function of the seed
    with pipeline_run(config.experiment, "binding_function", to_dict(config)):
        backbone = load_backbone(config.backbone).eval()
        image_size = config.image_size or backbone.image_size
        results = backbone_binding_function(
            backbone,
            world,
            image_size=image_size,
            seen_fraction=config.seen_fraction,
            config=config.complexity,
            seed=config.seed,
        )
        results.update({"image_size": image_size, "num_objects": world.space.num_objects})
        log_results({k: v for k, v in results.items() if k != "seen_objects"})
        text = report(results, config)
        write_outputs(config.out, config, results, text)
    print(text)
    return results


if __name__ == "__main__":
    cli(main)
