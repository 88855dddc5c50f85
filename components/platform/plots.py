"""Training curves from an MLflow metric history, for any run that logs metrics on a step.

Here, not in evaluation/, because the platform attaches curves to every model run it
finishes and must not import a domain package to do so.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def save_figure(fig: plt.Figure, path: str | Path, tight: bool = True) -> Path:
    """Write and close a figure; every plot of a report goes through here at the same dpi.

    ``tight=False``: the caller laid the figure out itself (a fixed grid, where
    ``tight_layout`` costs most of the figure's time and gains nothing)."""
    if tight:
        fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_curves(history: dict[str, list[tuple[int, float]]], path: str | Path) -> Path | None:
    """Training curves on the step axis: one panel per metric logged more than once.

    Loss parts share the first panel, so how the total splits is visible at a glance.
    """
    series = {k: sorted(v) for k, v in history.items() if len(v) > 1}
    if not series:
        return None
    losses = sorted(k for k in series if "loss" in k)
    panels = ([losses] if losses else []) + [[k] for k in sorted(series) if k not in losses]
    panels = panels[:6]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.0 * len(panels), 3.2), squeeze=False)
    for ax, keys in zip(axes[0], panels, strict=True):
        for key in keys:
            steps, values = zip(*series[key], strict=True)
            ax.plot(steps, values, label=key)
        ax.set_xlabel("training step")
        ax.set_title(keys[0] if len(keys) == 1 else "loss")
        if len(keys) > 1:
            ax.legend(fontsize="x-small")
    return save_figure(fig, path)
