"""Exact entropies of the balanced ColorShape world ("Formalizing the Binding Problem", A2).

Binding information is reported against theoretical entropies of the sampling
distribution, not sample estimates: given the feature code F (which a colours and b shapes
are present), O is uniform over the k-subsets of the a x b grid that use every selected
colour and shape, so H(O|F) = log2 N_k(a, b) with N counted by inclusion-exclusion.
"""

from __future__ import annotations

import math


def count_covering_subsets(a: int, b: int, k: int) -> int:
    """N_k(a,b): k-subsets of an a x b grid touching every row and every column."""
    total = 0
    for i in range(a + 1):
        for j in range(b + 1):
            cells = (a - i) * (b - j)
            if cells >= k:
                total += (-1) ** (i + j) * math.comb(a, i) * math.comb(b, j) * math.comb(cells, k)
    return total


def conditional_object_entropy(colors_per_scene: int, shapes_per_scene: int, objects: int) -> float:
    """H(O|F) in bits: every F code admits the same number of object codes."""
    n = count_covering_subsets(colors_per_scene, shapes_per_scene, objects)
    if n <= 0:
        raise ValueError(
            f"no scene has {objects} objects covering {colors_per_scene} colours x "
            f"{shapes_per_scene} shapes"
        )
    return math.log2(n)


def split_entropies(num_feature_codes: int, h_o_given_f: float) -> dict[str, float]:
    """H(F), H(O|F), H(O) for a split that draws F uniformly from its own codes."""
    h_f = math.log2(num_feature_codes)
    return {"H_F": h_f, "H_O_given_F": h_o_given_f, "H_O": h_f + h_o_given_f}
