"""Controls that show a binding-probe fit can measure before any representation is scored.

The bits a probe reports are only as good as its fit: an under-trained probe reads a
representation that holds everything as if it held nothing (issue 21: the old default
gave beta = -0.12 on the object code itself). So every run fits, on the same splits,
entropies and fit settings as the representations:

- ``zero``: a constant input. What the autoregressive label conditioning alone achieves;
  every representation's bits are also reported above this floor.
- ``feature_code``: z = F. Should give beta* ~ 0 (F holds no binding beyond F).
- ``object_code``: z = O. Should give beta ~ 1; below ``min_beta`` the run stops, because a
  fit that cannot read O off O cannot tell whether a backbone binds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from components.probes.binding_info import (
    BindingSplit,
    FitConfig,
    ProbeOptions,
    measure_binding,
)

CONTROLS = ("zero", "feature_code", "object_code")
REPORTED = ("B_O", "beta", "B_star", "beta_star", "CE_O", "CE_F")


class FitCannotMeasure(RuntimeError):
    """The object-code control failed: the fit settings cannot measure binding."""


def control_inputs(split: BindingSplit, control: str) -> np.ndarray:
    """The control's probe input for one split: zeros (N, 1), F or O as float32."""
    if control == "zero":
        return np.zeros((len(split.object_code), 1), np.float32)
    if control == "feature_code":
        return np.asarray(split.feature_code, np.float32)
    if control == "object_code":
        return np.asarray(split.object_code, np.float32)
    raise ValueError(f"unknown control {control!r}; expected one of {CONTROLS}")


def fit_controls(
    codes: Mapping[str, BindingSplit],
    entropies: Mapping[str, float],
    *,
    family: str = "linear",
    groups: tuple[int, int] | None = None,
    options: ProbeOptions | None = None,
    fit: FitConfig | None = None,
) -> dict[str, dict[str, Any]]:
    """{control: scores} with B_O, beta, B*, beta* (and CEs) for each control input.

    ``codes`` holds each split's codes (its ``inputs`` are ignored), so the controls see
    exactly the scenes the representations see.
    """
    controls = {}
    for control in CONTROLS:
        splits = {
            name: BindingSplit(control_inputs(s, control), s.object_code, s.feature_code)
            for name, s in codes.items()
        }
        scores, _ = measure_binding(
            splits, family, entropies, groups=groups, options=options, fit=fit
        )
        controls[control] = {k: float(scores[k]) for k in REPORTED} | {
            "family": family,
            "seconds": scores["fit_O"]["seconds"] + scores["fit_F"]["seconds"],
        }
    return controls


def require_measurable(controls: Mapping[str, Mapping[str, float]], min_beta: float) -> None:
    """Stop the run when the object-code control's beta is below ``min_beta``."""
    beta = controls["object_code"]["beta"]
    if not beta >= min_beta:  # also catches nan
        raise FitCannotMeasure(f"this fit cannot measure binding (object-code beta = {beta:.3f})")


def above_floor(scores: Mapping[str, float], controls: Mapping[str, Mapping[str, float]]) -> dict:
    """Bits a representation gains over the zero-input floor: CE_zero - CE (O and F)."""
    floor = controls["zero"]
    return {
        "B_O_above_floor": floor["CE_O"] - scores["CE_O"],
        "B_F_above_floor": floor["CE_F"] - scores["CE_F"],
    }
