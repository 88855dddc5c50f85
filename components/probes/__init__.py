"""Probes of frozen representations: binding information in bits, IsSameObject, and the
additive/complexity analyses. Import the submodules directly; this package re-exports the
binding-probe entry points only."""

from components.probes.binding_info import (
    FAMILIES,
    BindingSplit,
    FitConfig,
    ProbeOptions,
    binding_scores,
    fit_probe,
    make_probe,
    measure_binding,
)
from components.probes.same_object import (
    PAIR_FAMILIES,
    PairData,
    make_pair_probe,
    measure_same_object,
    patch_labels_from_mask,
)

__all__ = [
    "FAMILIES",
    "PAIR_FAMILIES",
    "BindingSplit",
    "FitConfig",
    "PairData",
    "ProbeOptions",
    "binding_scores",
    "fit_probe",
    "make_pair_probe",
    "make_probe",
    "measure_binding",
    "measure_same_object",
    "patch_labels_from_mask",
]
