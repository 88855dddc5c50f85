"""How much binding information does a frozen representation hold, layer by layer?

    python pipelines/probe_binding.py                                 # tiny random ViT, colorshape 64 px
    python pipelines/probe_binding.py checkpoint=outputs/train_occlip/occlip/checkpoint
    python pipelines/probe_binding.py --config pipelines/configs/smoke/probe_binding.yaml

Builds the synthetic world if missing, extracts per-layer tokens with a Ray Data actor pool
(components/probes/extract.py), then fits (1) teacher-forced autoregressive O- and F-probes
of every family and reports bits, beta = B_O/H(O) and beta* = B*/H(O|F) against the world's
exact entropies (components/probes/binding_info.py), and (2) IsSameObject pair probes with
their trivial baselines (components/probes/same_object.py). Writes config.yaml,
results.json {"probes": ...}, report.md and plots/ to out/, all logged to MLflow.
"""

from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from components.config import load_config, to_dict
from components.data.build import build_synthetic
from components.data.shards import shard_files
from components.data.synthetic import SyntheticSpec
from components.data.worlds import WORLD_CLASSES
from components.probes.binding_info import (
    TOKEN_FAMILIES,
    BindingSplit,
    FitConfig,
    ProbeOptions,
    measure_binding,
)
from components.probes.extract import (
    ExtractConfig,
    TokensWithCLS,
    extract_features,
    layer_tokens,
    load_backbone,
    load_features,
)
from components.probes.same_object import PairData, measure_same_object
from components.runtime import init_ray
from components.tracking import log_results, pipeline_run, write_outputs

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "probe_binding.yaml"
SPLITS = ("train", "val", "test")


@dataclass
class ProbeData:
    """The scenes to probe: an existing shard directory, or a synthetic world to build."""

    data: str = ""  # a shard directory with train/, val/, test/ and card.json; empty = build
    world: str = "colorshape"
    num_scenes: int = 3000
    seed: int = 0
    image_size: int = 64
    root: str = "datasets"


@dataclass
class ProbeBindingConfig:
    backbone: str = "tiny"  # a registered small config or an open_clip model name
    pretrained: str = ""  # open_clip tag or local weights
    checkpoint: str = ""  # a bindkit checkpoint directory; its .backbone is probed
    data: ProbeData = field(default_factory=ProbeData)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    representations: list[str] = field(default_factory=lambda: ["cls"])  # cls | mean
    families: list[str] = field(
        default_factory=lambda: ["linear", "quadratic", "shared_quadratic", "dnn", "attention"]
    )
    probe: ProbeOptions = field(default_factory=ProbeOptions)
    fit: FitConfig = field(default_factory=FitConfig)
    pair_families: list[str] = field(
        default_factory=lambda: ["linear", "diag_quadratic", "quadratic", "low_rank"]
    )
    pair_policy: str = "foreground"  # all | foreground
    patch_labels: str = "foreground"  # majority (reference: mode incl. background) | foreground
    pair_rank: int = 100
    pair_fit: FitConfig = field(default_factory=FitConfig)
    heatmap_images: int = 3
    out: str = "outputs/probe_binding"
    experiment: str = "probe_binding"


def prepare_data(config: ProbeBindingConfig) -> Path:
    """The shard directory to probe, building the synthetic world when needed."""
    d = config.data
    if d.data:
        return Path(d.data)
    path = Path(d.root) / f"{d.world}-n{d.num_scenes}-s{d.seed}-{d.image_size}px"
    if not (path / "card.json").exists():  # written last: its absence = unfinished
        build_synthetic(SyntheticSpec(d.world, d.seed, 1.0, d.image_size), d.num_scenes, path)
    return path


def model_spec(config: ProbeBindingConfig) -> dict[str, Any]:
    if config.checkpoint:
        return {"checkpoint": config.checkpoint}
    return {"name": config.backbone, "pretrained": config.pretrained or None}


def load_world(data: Path):
    """The world a shard directory was built from (its card carries the full spec)."""
    card = json.loads((data / "card.json").read_text())
    spec = card["spec"]
    world = WORLD_CLASSES[spec["kind"]](spec)
    if not hasattr(world, "entropies"):
        raise ValueError(
            f"{data}: world {world.name} has no exact entropies; binding bits need them"
        )
    return world


def binding_inputs(features: dict[str, np.ndarray], layer: int, representation: str):
    """The probe input of one layer: (N, d) for cls/mean, lazy (N, 1 + P, D) for tokens."""
    if representation == "tokens":
        return TokensWithCLS(features[f"layer{layer}_cls"], features[f"layer{layer}_patches"])
    return features[f"layer{layer}_{representation}"]


def patch_classes(features: dict[str, np.ndarray], world, suffix: str) -> dict[str, np.ndarray]:
    """Per patch, the value index of each concept of its object (-1 background)."""
    objects = np.asarray(features[f"patch_objects{suffix}"], dtype=np.int64)
    values = np.stack(np.unravel_index(np.maximum(objects, 0), world.space.sizes), -1)
    return {
        name: np.where(objects >= 0, values[..., c], -1) for c, name in enumerate(world.space.names)
    }


def probe_layer(config, features, layer, world, entropies) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every binding family and every pair family on one layer; returns (scores, O-probes)."""
    groups = tuple(world.space.sizes) if len(world.space.sizes) == 2 else None
    binding, probes = {}, {}
    for family in config.families:
        representations = ["tokens"] if family in TOKEN_FAMILIES else config.representations
        for representation in representations:
            splits = {
                s: BindingSplit(
                    binding_inputs(features[s], layer, representation),
                    features[s]["object_code"],
                    features[s]["feature_code"],
                )
                for s in SPLITS
            }
            scores, fitted = measure_binding(
                splits, family, entropies, groups=groups, options=config.probe, fit=config.fit
            )
            binding[f"{representation}/{family}"] = scores
            probes[f"{representation}/{family}"] = fitted["O"]
            print(
                f"layer {layer} {representation}/{family}: beta={scores['beta']:.3f} "
                f"beta*={scores['beta_star']:.3f} CE_O={scores['CE_O']:.2f} CE_F={scores['CE_F']:.2f}",
                flush=True,
            )
    same_object = {}
    suffix = {"majority": "", "foreground": "_foreground"}[config.patch_labels]
    if config.pair_families and f"layer{layer}_patches" in features["train"]:
        splits = {
            s: PairData(
                features[s][f"layer{layer}_patches"],
                features[s][f"patch_labels{suffix}"],
                patch_classes(features[s], world, suffix),
            )
            for s in SPLITS
        }
        for family in config.pair_families:
            scores, _ = measure_same_object(
                splits,
                family,
                policy=config.pair_policy,
                rank=config.pair_rank,
                fit=config.pair_fit,
            )
            same_object[family] = scores
            print(
                f"layer {layer} same-object {family}: acc={scores['accuracy']:.3f} "
                f"(constant {scores['constant']:.3f})",
                flush=True,
            )
    return {"binding": binding, "same_object": same_object}, probes


# -- plots -----------------------------------------------------------------------------
def plot_binding_bars(results: dict[str, Any], path: Path) -> None:
    """beta and beta* per probe family, one group of bars per layer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = list(results)
    names = sorted({n for r in results.values() for n in r["binding"]})
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
    width = 0.8 / max(len(names), 1)
    for ax, key in zip(axes, ("beta", "beta_star"), strict=True):
        for i, name in enumerate(names):
            heights = [results[layer]["binding"].get(name, {}).get(key, np.nan) for layer in layers]
            ax.bar(np.arange(len(layers)) + i * width, heights, width, label=name)
        ax.set_xticks(np.arange(len(layers)) + width * (len(names) - 1) / 2, layers)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_title({"beta": "beta = B_O / H(O)", "beta_star": "beta* = B* / H(O|F)"}[key])
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_same_object(results: dict[str, Any], path: Path) -> None:
    """IsSameObject test accuracy vs layer per pair family, with the baselines dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = [layer for layer in results if results[layer]["same_object"]]
    if not layers:
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    families = list(results[layers[0]]["same_object"])
    for family in families:
        ax.plot(
            layers,
            [results[layer]["same_object"][family]["accuracy"] for layer in layers],
            "o-",
            label=family,
        )
    first = results[layers[0]]["same_object"][families[0]]
    for key in [k for k in first if k == "constant" or k.startswith("same_")]:
        ax.plot(
            layers,
            [results[layer]["same_object"][families[0]][key] for layer in layers],
            "--",
            label=f"baseline: {key}",
        )
    ax.set_ylabel("test accuracy")
    ax.set_xlabel("layer")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_attention_heatmaps(config, probe, layer: int, data: Path, world, path: Path) -> None:
    """Where the attention probe's heads look, for the objects present in a few test images."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pyarrow.parquet as pq
    import torch
    from PIL import Image

    table = pq.read_table(shard_files(data / "test")[0], columns=["image", "object_code"])
    rows = table.slice(0, config.heatmap_images).to_pylist()
    if not rows:
        return
    backbone = load_backbone(model_spec(config)).eval()
    pictures = [Image.open(io.BytesIO(r["image"])).convert("RGB") for r in rows]
    images = torch.stack([backbone.preprocess(p) for p in pictures])
    tokens = layer_tokens(backbone, images, [layer], config.extract.token_space)[layer].float()
    labels = torch.tensor([r["object_code"] for r in rows], dtype=torch.float32)
    probe = probe.cpu().eval()
    with torch.no_grad():
        attention = probe.attention(tokens, labels)  # (B, K, P)
    grid = int(round(attention.shape[-1] ** 0.5))
    heads = 3
    fig, axes = plt.subplots(
        len(rows), heads + 1, figsize=(2.2 * (heads + 1), 2.2 * len(rows)), squeeze=False
    )
    for b, picture in enumerate(pictures):
        axes[b, 0].imshow(picture)
        axes[b, 0].set_title("image", fontsize=7)
        present = np.flatnonzero(np.asarray(rows[b]["object_code"]))[:heads]
        for h, k in enumerate(present):
            axes[b, h + 1].imshow(picture)
            heat = attention[b, k].reshape(grid, grid).numpy()
            axes[b, h + 1].imshow(
                heat, extent=(0, picture.width, picture.height, 0), alpha=0.6, cmap="magma"
            )
            axes[b, h + 1].set_title(" ".join(world.values_of(int(k))), fontsize=7)
        for ax in axes[b]:
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def report(results: dict[str, Any], entropies: dict[str, float], config: ProbeBindingConfig) -> str:
    source = config.checkpoint or f"{config.backbone} ({config.pretrained or 'random init'})"
    lines = [
        f"# probe_binding: {source} on {config.data.data or config.data.world}",
        "",
        f"Test-split exact entropies: H(O) = {entropies['H_O']:.2f} bits, "
        f"H(O|F) = {entropies['H_O_given_F']:.2f} bits, H(F) = {entropies['H_F']:.2f} bits.",
        "",
        "## Binding information (test CE at the best-val epoch)",
        "",
        "| layer | input/family | CE_O | CE_F | B_O | B* | beta | beta* |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for layer, r in results.items():
        for name, s in r["binding"].items():
            lines.append(
                f"| {layer} | {name} | {s['CE_O']:.2f} | {s['CE_F']:.2f} | {s['B_O']:.2f} | "
                f"{s['B_star']:.2f} | {s['beta']:.3f} | {s['beta_star']:.3f} |"
            )
    pair_rows = [(layer, f, s) for layer, r in results.items() for f, s in r["same_object"].items()]
    if pair_rows:
        extra = [k for k in pair_rows[0][2] if k.startswith("same_")]
        lines += [
            "",
            f"## IsSameObject (pairs: {config.pair_policy}, test accuracy)",
            "",
            "| layer | probe | accuracy | constant | " + " | ".join(extra) + " | P(same) |",
            "|---" * (5 + len(extra)) + "|",
        ]
        for layer, family, s in pair_rows:
            lines.append(
                f"| {layer} | {family} | {s['accuracy']:.3f} | {s['constant']:.3f} | "
                + " | ".join(f"{s[k]:.3f}" for k in extra)
                + f" | {s['p_same']:.3f} |"
            )
    return "\n".join(lines) + "\n"


def strip_probes(results: dict[str, Any]) -> dict[str, Any]:
    """Only numbers go to results.json: drop the nested fit config copies."""
    for r in results.values():
        for scores in r["binding"].values():
            scores.pop("fit", None)
    return results


def main(argv: list[str]) -> dict[str, Any]:
    config = load_config(ProbeBindingConfig, argv, DEFAULT_CONFIG)
    if config.patch_labels not in ("majority", "foreground"):
        raise ValueError(
            f"patch_labels must be majority or foreground, got {config.patch_labels!r}"
        )
    out = Path(config.out)
    init_ray()
    with pipeline_run(config.experiment, "probe_binding", to_dict(config)):
        data = prepare_data(config)
        world = load_world(data)
        entropies = world.entropies("test")
        files = {split: shard_files(data / split) for split in SPLITS}
        extract_features(files, out / "features", model_spec(config), config.extract)
        features = {}
        for split in SPLITS:
            features[split], meta = load_features(out / "features" / split)
        results: dict[str, Any] = {}
        attention_probes = {}
        for layer in meta["layers"]:
            results[f"layer{layer}"], probes = probe_layer(
                config, features, layer, world, entropies
            )
            if "tokens/attention" in probes:
                attention_probes[layer] = probes["tokens/attention"]
        plots = out / "plots"
        plots.mkdir(parents=True, exist_ok=True)
        plot_binding_bars(results, plots / "binding_bars.png")
        plot_same_object(results, plots / "same_object_vs_layer.png")
        if attention_probes and config.heatmap_images:
            layer = max(attention_probes)
            plot_attention_heatmaps(
                config,
                attention_probes[layer],
                layer,
                data,
                world,
                plots / f"attention_layer{layer}.png",
            )
        payload = {
            "probes": strip_probes(results),
            "entropies": entropies,
            "rows": {s: len(features[s]["object_code"]) for s in SPLITS},
        }
        log_results({"probes": payload["probes"]})
        text = report(results, entropies, config)
        write_outputs(out, config, payload, text)
        import mlflow

        mlflow.log_artifacts(str(plots), artifact_path="plots")
    print(text)
    return payload


if __name__ == "__main__":
    main(sys.argv[1:])
