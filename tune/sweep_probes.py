"""Hyperparameter sweep of the binding-information probes: which probe is the estimate's?

    python tune/sweep_probes.py [--config F] [key=value ...]

The binding bits of arXiv 2606.03976 are test cross-entropies of trained probes, so they are
only as good as the probe's optimisation. This sweep searches lr x weight decay x epochs x
rank (quadratic families) or hidden width (dnn) over one or several probe families with Ray
Tune. The driver extracts the frozen features ONCE (or reads an existing features dir,
``features=DIR`` with train/, val/, test/); every trial memory-maps them, fits the F-probe,
then the O-probe with ``fit_probe``, reporting the O-probe's val CE each epoch, so ASHA can
stop bad trials on ``val_ce_o`` (``asha=true``). Each trial is an MLflow run.

At the end the trial with the lowest val CE_O (at its best-val epoch) is selected, and its
test CE_O, CE_F (at the val-selected epochs) give B_O, B*, beta, beta* against the world's
exact test entropies; they go to results.json {"sweep_probes": {"best", "test", ...}},
report.md and an MLflow summary run. Trials are the restart unit: a rerun with the same
``out`` restores the experiment and reruns only unfinished trials, from their first epoch.
On a multi-node cluster ``out`` (or ``features``) must be on storage every node can read.
"""

from __future__ import annotations

import components.help_gate  # noqa: F401  (answers --help before torch and Ray load)

# isort: split
import itertools
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

try:
    from pipelines.probe_binding import ProbeData as SceneData
    from pipelines.probe_binding import binding_inputs, load_world, model_spec, prepare_data
except ModuleNotFoundError:  # run as a script: the repository root is not on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from pipelines.probe_binding import ProbeData as SceneData
    from pipelines.probe_binding import binding_inputs, load_world, model_spec, prepare_data

from components.config import check, cli, run_pipeline, to_dict
from components.data.shards import shard_files
from components.outputs import check_manifest, config_manifest
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
from components.probes.extract import ExtractConfig, extract_features, load_features
from components.runtime import init_ray
from components.tracking import log_results, pipeline_run, write_outputs
from components.tuning import fit_sweep

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "sweep_probes.yaml"
SPLITS = ("train", "val", "test")
REPRESENTATIONS = ("cls", "mean")
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


@dataclass
class SweepProbesConfig:
    """Where features come from, the grid, and the settings every trial shares."""

    out: str = "outputs/sweep_probes"  # output folder: manifest, results, report
    name: str = "sweep_probes"  # Tune experiment name (trial folders under out/)
    experiment: str = "sweep_probes"  # MLflow experiment of the trials and the summary
    features: str = ""  # an extracted features dir (train/ val/ test/); empty = extract to out/
    # Used when features is empty (as in pipelines/probe_binding.py); data.data also names the
    # shard dir of given features when their meta's shard paths do not lead to its card.json.
    backbone: str = "tiny"
    pretrained: str = ""  # open_clip tag or local weights for backbone
    checkpoint: str = ""  # a bindkit checkpoint directory to probe instead
    data: SceneData = field(default_factory=SceneData)
    extract: ExtractConfig = field(
        default_factory=lambda: ExtractConfig(layers=[-1], patch_tokens=False)
    )
    layer: int = -1  # a 0-based block among the extracted ones; -1 = the last extracted
    representation: str = "cls"  # cls | mean (the attention family always reads tokens)
    space: ProbeSpace = field(default_factory=ProbeSpace)
    dnn_layers: int = 3  # the dnn family's depth (fixed; rank and hidden come from space)
    fit: FitConfig = field(default_factory=FitConfig)  # lr, weight_decay, epochs come from space
    asha: bool = False  # stop weak trials early with ASHA
    asha_grace_epochs: int = 4  # epochs before ASHA may stop a trial
    cpus_per_trial: float = 1.0  # CPUs per trial (sets concurrency)
    gpus_per_trial: float = -1.0  # < 0: 0.25 of a GPU when the cluster has GPUs, else none
    max_concurrent_trials: int = 0  # 0: as many as resources allow
    resume: bool = True  # continue a matching interrupted sweep in out/
    overwrite: bool = False  # true: empty an out= made with another grid and sweep afresh

    def validate(self) -> None:
        check(self.cpus_per_trial > 0, "cpus_per_trial", self.cpus_per_trial, "> 0")
        check(
            self.representation in ("cls", "mean"),
            "representation",
            self.representation,
            "cls | mean",
        )


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


def probe_trial(trial: dict[str, Any]) -> None:
    """One Tune trial: the F-probe silently, then the O-probe reporting every epoch.

    F goes first so that every report (each may be the last, under ASHA) carries both
    probes' val-selected test CEs.
    """
    from ray import tune

    torch.set_num_threads(max(1, int(trial["cpus"])))
    features = {split: load_features(Path(trial["features"]) / split)[0] for split in SPLITS}
    fit_f = fit_target("F", features, trial)

    def report(row: dict[str, float]) -> None:
        tune.report(
            {
                "epoch": row["epoch"],
                "train_ce_o": row["train_bits"],
                "val_ce_o": row["val_bits"],
                "best_val_ce_o": row["best_val_bits"],
                "best_epoch_o": row["best_epoch"],
                "selected_test_ce_o": row["best_test_bits"],
                "best_val_ce_f": fit_f.val_bits,
                "best_epoch_f": fit_f.best_epoch,
                "selected_test_ce_f": fit_f.test_bits,
            }
        )

    fit_target("O", features, trial, on_epoch=report)


def prepare_features(config: SweepProbesConfig) -> tuple[Path, Any]:
    """The features dir every trial reads (extracting once if needed) and its world."""
    if config.features:
        directory = Path(config.features).resolve()
        _, meta = load_features(directory / "test")
        data = Path(config.data.data) if config.data.data else Path(meta["shards"][0]).parents[1]
        if not (data / "card.json").exists():
            raise FileNotFoundError(
                f"features {directory}: no card.json in {data} (from the meta's shard paths); "
                "set data.data to the shard dir the features were extracted from"
            )
        return directory, load_world(data)
    data = prepare_data(config)
    directory = (Path(config.out) / "features").resolve()
    if not all(_extracted_as(directory / split, config) for split in SPLITS):
        files = {split: shard_files(data / split) for split in SPLITS}
        extract_features(files, directory, model_spec(config), config.extract)
    return directory, load_world(data)


def _extracted_as(split_dir: Path, config: SweepProbesConfig) -> bool:
    """Whether a finished extraction of this model and ExtractConfig is already there."""
    try:
        _, meta = load_features(split_dir)
    except FileNotFoundError:
        return False
    return meta["model"] == model_spec(config) and meta["config"] == asdict(config.extract)


def resolve_layer(directory: Path, config: SweepProbesConfig) -> int:
    """The extracted block to probe, checked against the features' meta."""
    features, meta = load_features(directory / "train")
    layers = meta["layers"]
    layer = layers[config.layer] if config.layer < 0 else config.layer
    if layer not in layers:
        raise ValueError(f"layer {config.layer}: {directory} holds layers {layers} only")
    if any(f in TOKEN_FAMILIES for f in config.space.families) and (
        f"layer{layer}_patches" not in features
    ):
        raise ValueError(
            f"{directory}: the attention family reads patch tokens; extract with patch_tokens=true"
        )
    return layer


def run_sweep(config: SweepProbesConfig, features: Path, layer: int, world) -> Any:
    """Build (or restore) the Tuner over the probe grid and fit it; returns the ResultGrid."""
    from ray import tune

    scheduler = None
    if config.asha:
        scheduler = tune.schedulers.ASHAScheduler(
            time_attr="training_iteration",  # one report per epoch
            max_t=max(config.space.epochs),
            grace_period=config.asha_grace_epochs,
        )
    sizes = list(world.space.sizes)
    param_space = {
        "probe": tune.grid_search(probe_grid(config.space)),
        "features": str(features),
        "layer": layer,
        "representation": config.representation,
        "groups": sizes if len(sizes) == 2 else None,
        "cpus": config.cpus_per_trial,
        "dnn_layers": config.dnn_layers,
        # the swept fields are left out so that MLflow params show only the values used
        "fit": {k: v for k, v in to_dict(config.fit).items() if k not in SWEPT_FIT},
    }
    return fit_sweep(
        probe_trial,
        param_space,
        config,
        metric="val_ce_o",
        mode="min",
        scheduler=scheduler,
    )


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


def report_text(summary: dict[str, Any], config: SweepProbesConfig, seconds: float) -> str:
    """Markdown: the selected probe's bits, then every trial ranked by val CE_O."""
    test = summary["test"]
    lines = [
        "# Probe hyperparameter sweep (binding information)",
        "",
        f"Layer {summary['layer']} {config.representation}, {summary['trials']['finished']} of "
        f"{summary['trials']['total']} trials finished (ASHA {'on' if config.asha else 'off'}); "
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


def main(argv: list[str]) -> dict[str, Any]:
    return run_pipeline(SweepProbesConfig, run, argv, DEFAULT_CONFIG)


def run(config: SweepProbesConfig) -> dict[str, Any]:
    """Run the sweep; write config.yaml, results.json and report.md to out/, log a summary."""
    import mlflow

    probe_grid(config.space)  # fail on a bad family before Ray starts
    # a changed grid must not restore the old experiment and overwrite its report
    check_manifest(config.out, config_manifest(config), config.overwrite)
    if config.representation not in REPRESENTATIONS:
        raise ValueError(
            f"representation must be one of {REPRESENTATIONS}, got {config.representation!r}"
        )
    started = time.time()
    init_ray(num_cpus=os.cpu_count() or 1)  # one logical CPU = one concurrent trial
    features, world = prepare_features(config)
    if "shared_quadratic" in config.space.families and len(world.space.sizes) != 2:
        raise ValueError(f"shared_quadratic needs a 2-concept world; {world.name} has more")
    layer = resolve_layer(features, config)
    grid = run_sweep(config, features, layer, world)
    rows = []
    for result in grid:
        if result.error is not None or not result.metrics:
            print(f"trial {result.path} failed: {result.error}")
            continue
        rows.append({**result.metrics, "probe": result.config["probe"]})
    summary = summarise(rows, world.entropies("test"))
    summary["layer"] = layer
    summary["features"] = str(features)
    summary["trials"] = {"finished": len(rows), "total": len(grid)}
    results = {"sweep_probes": summary}
    out = Path(config.out)
    report = report_text(summary, config, time.time() - started)
    with pipeline_run(config.experiment, f"{config.name}-summary", to_dict(config)):
        mlflow.log_params({f"best.{k}": v for k, v in summary["best"].items()})
        log_results({"test": summary["test"], "val": summary["val"]})
        write_outputs(out, config, results, report)
    print(report)
    return results


if __name__ == "__main__":
    cli(main)
