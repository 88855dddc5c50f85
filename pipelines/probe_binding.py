"""How much binding information does a frozen representation hold, layer by layer?

    python pipelines/probe_binding.py                                 # tiny random ViT, colorshape 64 px
    python pipelines/probe_binding.py backbone.checkpoint=outputs/train_occlip/occlip/checkpoint
    python pipelines/probe_binding.py --config pipelines/configs/smoke/probe_binding.yaml
    python pipelines/probe_binding.py --config pipelines/configs/probe_binding_clevr.yaml

Builds the synthetic world if missing, extracts per-layer tokens once with a Ray Data actor
pool into memmaps (components/probes/extract.py; reused by later runs on the same data and
model), then, where the world has exact entropies, fits the controls (zero input, feature
code, object code; components/probes/controls.py) and stops if the object-code control
cannot be read, then (1) teacher-forced autoregressive O- and F-probes of every family with
bits, beta = B_O/H(O) and beta* = B*/H(O|F) and the bits above the zero-input floor
(components/probes/binding_info.py), and (2) IsSameObject pair probes with their baselines
(components/probes/same_object.py) on every world; components/probes/layer_probes.py runs
them layer by layer. Writes config.yaml, results.json {"controls": ..., "probes": ...},
report.md and plots/ to out/, all logged to MLflow.
"""

from __future__ import annotations

import components.platform.help_gate  # noqa: F401  (answers --help before torch and Ray load)

# isort: split
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.data.shards import shard_files
from components.models.backbone import BackboneConfig
from components.platform.cli import cli, run_pipeline
from components.platform.config import check_path, to_dict
from components.platform.runtime import init_ray
from components.platform.tracking import log_results, pipeline_run, write_outputs
from components.probes.extract import ExtractConfig, extract_features, load_features
from components.probes.inputs import (
    SPLITS,
    ProbeScenes,
    exact_entropies,
    load_world,
    scene_shards,
)
from components.probes.layer_probes import (
    LayerProbeSettings,
    probe_layer,
    run_controls,
    strip_probes,
)
from components.probes.plots import plot_attention_heatmaps, plot_binding_bars, plot_same_object
from components.probes.report import backbone_label, probe_report

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "probe_binding.yaml"


@dataclass
class ProbeBindingConfig(LayerProbeSettings):
    """The representation probed, the scenes, and (inherited) the probes run on each layer."""

    # the backbone probed: name + pretrained, or checkpoint (a trained model's .backbone)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    data: ProbeScenes = field(default_factory=ProbeScenes)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    heatmap_images: int = 3  # images shown with IsSameObject heatmaps
    out: str = "outputs/probe_binding"  # output folder: features, results, plots, report
    experiment: str = "probe_binding"  # MLflow experiment name

    def validate(self) -> None:
        super().validate()
        if self.backbone.checkpoint:
            check_path("backbone.checkpoint", self.backbone.checkpoint, "dir")


def write_plots(config: ProbeBindingConfig, results, attention_probes, data, world) -> Path:
    """plots/: bits per family, IsSameObject vs layer, the last attention probe's maps."""
    plots = Path(config.out) / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    plot_binding_bars(results, plots / "binding_bars.png")
    plot_same_object(results, plots / "same_object_vs_layer.png")
    if attention_probes and config.heatmap_images:
        layer = max(attention_probes)
        test = data / config.data.split_names["test"]
        plot_attention_heatmaps(
            config.backbone.source(),
            config.extract.token_space,
            attention_probes[layer],
            layer,
            test,
            world,
            plots / f"attention_layer{layer}.png",
            config.heatmap_images,
        )
    return plots


def main(argv: list[str]) -> dict[str, Any]:
    return run_pipeline(ProbeBindingConfig, run, argv, DEFAULT_CONFIG)


def run(config: ProbeBindingConfig) -> dict[str, Any]:
    import mlflow

    out = Path(config.out)
    init_ray()
    with pipeline_run(config.experiment, "probe_binding", to_dict(config)):
        data = scene_shards(config.data)
        world = load_world(data)
        names = dict(config.data.split_names)
        entropies = exact_entropies(world, names)
        files = {names[split]: shard_files(data / names[split]) for split in SPLITS}
        extract_features(files, out / "features", config.backbone.source(), config.extract)
        features = {}
        for split in SPLITS:
            features[split], meta = load_features(out / "features" / names[split])
        controls = None
        if entropies is None:
            print(f"world {world.name} has no exact entropies: binding bits skipped", flush=True)
        else:
            controls = run_controls(config, features, world, entropies)
        results: dict[str, Any] = {}
        attention_probes = {}
        for layer in meta["layers"]:
            results[f"layer{layer}"], probes = probe_layer(
                config, features, layer, world, entropies, controls
            )
            if "tokens/attention" in probes:
                attention_probes[layer] = probes["tokens/attention"]
        plots = write_plots(config, results, attention_probes, data, world)
        payload = {
            "controls": controls,
            "probes": strip_probes(results),
            "entropies": entropies,
            "rows": {s: len(features[s]["object_code"]) for s in SPLITS},
            "split_names": names,
        }
        log_results({"controls": controls or {}, "probes": payload["probes"]})
        scenes = config.data.data or config.data.world
        title = f"probe_binding: {backbone_label(config.backbone)} on {scenes}"
        text = probe_report(title, results, entropies, controls, config.pair_policy)
        write_outputs(out, config, payload, text)
        mlflow.log_artifacts(str(plots), artifact_path="plots")
    print(text)
    return payload


if __name__ == "__main__":
    cli(main)
