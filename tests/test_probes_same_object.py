"""IsSameObject: patch labels and pairs from masks, pair probes and their baselines."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from components.probes.binding_info import FitConfig
from components.probes.same_object import (
    PairData,
    make_pair_probe,
    measure_same_object,
    pair_baselines,
    pair_targets,
    patch_labels_from_mask,
)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def hand_made_mask() -> np.ndarray:
    """8x8 pixels = 2x2 patches of 4x4: object 1 fills patch 0 and most of patch 1,
    object 2 has 5 pixels of patch 2 (background has 11), patch 3 ties 1 vs 2 (8 each)."""
    mask = np.zeros((8, 8), np.uint8)
    mask[0:4, 0:4] = 1  # patch 0: all object 1
    mask[0:4, 4:8] = 1
    mask[0, 4:7] = 0  # patch 1: 13 of 16 pixels object 1
    mask[4, 0:4] = 2
    mask[5, 0] = 2  # patch 2: 5 pixels object 2, 11 background
    mask[4:6, 4:8] = 1
    mask[6:8, 4:8] = 2  # patch 3: 8 object 1, 8 object 2 -> tie to the lower id
    return mask


def test_patch_label_is_the_majority_instance_with_ties_to_the_lower_id():
    assert patch_labels_from_mask(hand_made_mask(), 2).tolist() == [1, 1, 0, 1]


def test_patch_labels_reject_a_grid_that_does_not_tile():
    with pytest.raises(ValueError, match="3x3 patch grid"):
        patch_labels_from_mask(np.zeros((8, 8), np.uint8), 3)


def test_pairs_are_within_image_upper_triangle_and_policy_filters_background():
    labels = torch.tensor([[1, 1, 0, 2], [0, 0, 3, 3]])
    same, valid = pair_targets(labels, "all")
    assert valid.shape == (2, 4, 4) and int(valid.sum()) == 12  # 6 pairs i < j per image
    assert same[0, 0, 1] and not same[0, 0, 3] and same[1, 0, 1]  # background pairs count as same
    same, valid = pair_targets(labels, "foreground")
    assert valid[0].nonzero().tolist() == [[0, 1], [0, 3], [1, 3]]
    assert valid[1].nonzero().tolist() == [[2, 3]]
    assert [bool(same[0, i, j]) for i, j in valid[0].nonzero().tolist()] == [True, False, False]


def test_pair_probes_are_symmetric_and_shaped_per_image():
    x = torch.randn(3, 5, 8)
    for family in ("linear", "diag_quadratic", "quadratic", "low_rank"):
        logits = make_pair_probe(family, 8, rank=4)(x)
        assert logits.shape == (3, 5, 5)
        assert torch.allclose(logits, logits.transpose(1, 2), atol=1e-5), family


def oracle_split(seed: int, images: int, patches: int = 16, objects: int = 4) -> PairData:
    """z = one-hot instance id per patch (plus noise dims); colour classes collide on purpose."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, objects + 1, size=(images, patches))
    tokens = np.concatenate(
        [np.eye(objects + 1)[labels], 0.1 * rng.standard_normal((images, patches, 3))], -1
    ).astype(np.float16)
    colors = np.where(labels > 0, (labels - 1) % 2, -1)  # 4 objects, 2 colours
    return PairData(tokens, labels.astype(np.int16), {"color": colors})


def test_quadratic_pair_probe_on_one_hot_instances_is_perfect_and_beats_baselines():
    splits = {
        "train": oracle_split(0, 200),
        "val": oracle_split(1, 50),
        "test": oracle_split(2, 50),
    }
    fit = FitConfig(epochs=40, lr=0.05, weight_decay=0.0, batch_size=32)
    scores, _ = measure_same_object(splits, "quadratic", policy="foreground", fit=fit)
    print("one-hot oracle:", {k: round(v, 3) for k, v in scores.items()})
    assert scores["accuracy"] >= 0.99
    assert scores["constant"] == pytest.approx(1 - scores["p_same"])  # most pairs differ
    assert scores["accuracy"] > scores["constant"] + 0.15
    assert scores["accuracy"] > scores["same_color"] + 0.15


def test_baselines_are_computed_on_the_same_pairs():
    labels = np.array([[1, 1, 2, 0]])
    colors = np.array([[0, 0, 0, -1]])  # objects 1 and 2 share a colour
    data = PairData(np.zeros((1, 4, 2), np.float16), labels, {"color": colors})
    baselines = pair_baselines(data, data, "foreground")
    # pairs (0,1) same, (0,2) diff, (1,2) diff: constant "different" gets 2/3; colour says all same: 1/3
    assert baselines["p_same"] == pytest.approx(1 / 3)
    assert baselines["constant"] == pytest.approx(2 / 3)
    assert baselines["same_color"] == pytest.approx(1 / 3)


def test_foreground_rule_labels_a_patch_by_its_object_pixels():
    # Patch 2 has 5 pixels of object 2 and 11 background: background by mode, 2 by foreground.
    assert patch_labels_from_mask(hand_made_mask(), 2, foreground=True).tolist() == [1, 1, 2, 1]
