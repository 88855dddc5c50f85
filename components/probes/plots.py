"""Figures of a probe run: bits per family and layer, IsSameObject vs layer, attention maps."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from components.data.shards import shard_files
from components.models.loading import load_backbone
from components.probes.extract import layer_tokens


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_binding_bars(results: dict[str, Any], path: Path) -> None:
    """beta and beta* per probe family, one group of bars per layer; no file when no family
    was scored (worlds without exact entropies)."""
    names = sorted({n for r in results.values() for n in r["binding"]})
    if not names:
        return
    plt = _pyplot()
    layers = list(results)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
    width = 0.8 / len(names)
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
    plt = _pyplot()
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
    labellings = {name.split("/")[0]: name for name in families}  # one family per labelling
    for labelling, name in labellings.items():
        first = results[layers[0]]["same_object"][name]
        for key in [k for k in first if k == "constant" or k.startswith("same_")]:
            ax.plot(
                layers,
                [results[layer]["same_object"][name][key] for layer in layers],
                "--",
                label=f"{labelling} baseline: {key}",
            )
    ax.set_ylabel("test accuracy")
    ax.set_xlabel("layer")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_attention_heatmaps(
    backbone_spec: dict[str, Any],
    token_space: str,
    probe,
    layer: int,
    test: Path,
    world,
    path: Path,
    images: int,
) -> None:
    """Where the attention probe's heads look, for the objects present in a few test images
    (``images`` of them, through the backbone ``backbone_spec`` names)."""
    import pyarrow.parquet as pq
    import torch
    from PIL import Image

    table = pq.read_table(shard_files(test)[0], columns=["image", "object_code"])
    rows = table.slice(0, images).to_pylist()
    if not rows:
        return
    plt = _pyplot()
    backbone = load_backbone(backbone_spec).eval()
    pictures = [Image.open(io.BytesIO(r["image"])).convert("RGB") for r in rows]
    batch = torch.stack([backbone.preprocess(p) for p in pictures])
    tokens = layer_tokens(backbone, batch, [layer], token_space)[layer].float()
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
