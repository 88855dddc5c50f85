"""A probe hyperparameter sweep's parts: the grid, one trial's fits, and the selected probe.

The binding bits of arXiv 2606.03976 are test cross-entropies of trained probes, so they are
only as good as the probe's optimisation. A sweep (tune/sweep_probes.py) crosses lr x weight
decay x epochs with the architecture knobs each family reads, fits the F- then the O-probe
of every grid point on frozen features, and selects the point with the lowest val CE_O; its
test CEs at the val-selected epochs give B_O, B*, beta and beta*.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.probes.binding_info import (
    FAMILIES,
    TOKEN_FAMILIES,
    FitConfig,
    ProbeData,
    ProbeFit,
    ProbeOptions,
    binding_scores,
    fit_probe,
    input_statistics,
    make_probe,
)
from components.probes.extract import load_features
from components.probes.inputs import SPLITS, binding_inputs

SWEPT_FIT = ("lr", "weight_decay", "epochs")  # FitConfig fields every trial takes from space
# The architecture knobs each family reads; the others would only duplicate trials.
FAMILY_KNOBS = {
    "linear": (),
    "quadratic": ("rank",),
    "shared_quadratic": ("rank",),
    "dnn": ("hidden",),
    "attention": ("rank",),
}


@dataclass
class ProbeSpace:
    """The grid: every list is one axis; a one-element list fixes that knob."""

    families: list[str] = field(default_factory=lambda: ["quadratic"])  # grid axis: probe families
    lr: list[float] = field(default_factory=lambda: [1e-3, 3e-3])  # grid axis: learning rates
    weight_decay: list[float] = field(default_factory=lambda: [1e-4])  # grid axis: weight decays
    epochs: list[int] = field(default_factory=lambda: [20])  # grid axis: epochs
    rank: list[int] = field(default_factory=lambda: [16])  # quadratic, shared, attention
    hidden: list[int] = field(default_factory=lambda: [128])  # dnn


def probe_grid(space: ProbeSpace) -> list[dict[str, Any]]:
    """Every probe config of the grid, each family crossed only with the knobs it reads."""
    candidates = []
    for family in space.families:
        if family not in FAMILY_KNOBS:
            raise ValueError(f"space.families: unknown family {family!r}; expected {FAMILIES}")
        knobs = FAMILY_KNOBS[family]
        axes = [space.lr, space.weight_decay, space.epochs, *(getattr(space, k) for k in knobs)]
        for lr, weight_decay, epochs, *values in itertools.product(*axes):
            candidates.append(
                {
                    "family": family,
                    "lr": lr,
                    "weight_decay": weight_decay,
                    "epochs": epochs,
                    **dict(zip(knobs, values, strict=True)),
                }
            )
    if not candidates:
        raise ValueError("space: the grid is empty (an axis has no values)")
    return candidates


def fit_target(
    target: str,
    features: dict[str, dict[str, Any]],
    trial: dict[str, Any],
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> ProbeFit:
    """Fit the O- or F-probe of one trial's config on train, selecting its epoch on val."""
    probe_config = trial["probe"]
    family = probe_config["family"]
    representation = "tokens" if family in TOKEN_FAMILIES else trial["representation"]
    column = {"O": "object_code", "F": "feature_code"}[target]
    options = ProbeOptions(
        layers=trial["dnn_layers"], **{k: probe_config[k] for k in FAMILY_KNOBS[family]}
    )
    fit = FitConfig(**trial["fit"], **{k: probe_config[k] for k in SWEPT_FIT})
    inputs = {s: binding_inputs(features[s], trial["layer"], representation) for s in SPLITS}
    # As in measure_binding: standardise with the train split's statistics.
    mean, std = input_statistics(inputs["train"]) if fit.standardize else (None, None)
    data = {split: ProbeData(inputs[split], features[split][column], mean, std) for split in SPLITS}
    # As in measure_binding: colour/shape sharing only makes sense for O.
    target_family = "quadratic" if family == "shared_quadratic" and target == "F" else family
    probe = make_probe(
        target_family,
        int(data["train"].inputs.shape[-1]),
        int(data["train"].targets.shape[1]),
        rank=options.rank,
        hidden=options.hidden,
        layers=options.layers,
        groups=tuple(trial["groups"]) if trial["groups"] else None,
        seed=fit.seed,
    )
    return fit_probe(probe, data["train"], data["val"], data["test"], fit, on_epoch)


def resolve_layer(directory: Path, layer: int, families: list[str]) -> int:
    """The extracted block to probe (``layer`` < 0 counts from the last extracted one),
    checked against the features' meta."""
    features, meta = load_features(directory / "train")
    layers = meta["layers"]
    resolved = layers[layer] if layer < 0 else layer
    if resolved not in layers:
        raise ValueError(f"layer {layer}: {directory} holds layers {layers} only")
    if any(f in TOKEN_FAMILIES for f in families) and (f"layer{resolved}_patches" not in features):
        raise ValueError(
            f"{directory}: the attention family reads patch tokens; extract with patch_tokens=true"
        )
    return resolved


def summarise(rows: list[dict[str, Any]], entropies: dict[str, float]) -> dict[str, Any]:
    """The lowest val CE_O trial (at its best-val epoch), its test bits, and every trial."""
    if not rows:
        raise RuntimeError("sweep_probes: no trial finished; see the Tune errors above")
    ranked = sorted(rows, key=lambda r: r["best_val_ce_o"])
    best = ranked[0]
    return {
        "best": best["probe"],
        "val": {"CE_O": best["best_val_ce_o"], "CE_F": best["best_val_ce_f"]},
        "selected_epochs": {"O": best["best_epoch_o"], "F": best["best_epoch_f"]},
        "test": binding_scores(best["selected_test_ce_o"], best["selected_test_ce_f"], entropies),
        "by_val_ce": [
            {**r["probe"], "val_ce_o": r["best_val_ce_o"], "epochs_run": r["training_iteration"]}
            for r in ranked
        ],
    }


def sweep_report(summary: dict[str, Any], representation: str, asha: bool, seconds: float) -> str:
    """Markdown: the selected probe's bits, then every trial ranked by val CE_O."""
    test = summary["test"]
    lines = [
        "# Probe hyperparameter sweep (binding information)",
        "",
        f"Layer {summary['layer']} {representation}, {summary['trials']['finished']} of "
        f"{summary['trials']['total']} trials finished (ASHA {'on' if asha else 'off'}); "
        f"wall time {seconds / 60:.1f} min. Selected on val CE_O at each trial's best-val "
        "epoch; test CEs are at the val-selected epochs.",
        "",
        f"Best: {summary['best']}",
        "",
        "| CE_O | CE_F | B_O | B* | beta | beta* | H(O) | H(O|F) |",
        "|---|---|---|---|---|---|---|---|",
        f"| {test['CE_O']:.2f} | {test['CE_F']:.2f} | {test['B_O']:.2f} | {test['B_star']:.2f} "
        f"| {test['beta']:.3f} | {test['beta_star']:.3f} | {test['H_O']:.2f} "
        f"| {test['H_O_given_F']:.2f} |",
        "",
        "| family | lr | weight decay | epochs | rank/hidden | val CE_O (bits) | epochs run |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in summary["by_val_ce"]:
        width = r.get("rank", r.get("hidden", "-"))
        lines.append(
            f"| {r['family']} | {r['lr']:g} | {r['weight_decay']:g} | {r['epochs']} | {width} "
            f"| {r['val_ce_o']:.3f} | {r['epochs_run']} |"
        )
    return "\n".join(lines) + "\n"
