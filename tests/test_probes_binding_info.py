"""Binding-information probes on oracle representations with known answers.

A small balanced ColorShape world (4 colours x 4 shapes, 2 of each per scene, 3 objects)
keeps the exact entropies (H(O|F) = log2 4 = 2 bits) and runs in seconds. O codes are
sampled by the world itself; the oracles go through ``measure_binding``, the function the
pipeline calls on extracted features. All splits draw from the world's train F codes so
the oracles test the estimator, not generalisation to unseen F codes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from components.data.worlds.colorshape import ColorShapeWorld
from components.data.worlds.colorshape_entropy import conditional_object_entropy
from components.probes.binding_info import (
    BindingSplit,
    FitConfig,
    ProbeData,
    ProbeOptions,
    binding_scores,
    bits_per_image,
    make_probe,
    measure_binding,
)

SMALL_WORLD = {
    "name": "colorshape_small",
    "kind": "colorshape",
    "concepts": {
        "color": ["red", "blue", "green", "gray"],
        "shape": ["circle", "square", "star", "cross"],
    },
    "colors_per_scene": 2,
    "shapes_per_scene": 2,
    "objects_per_scene": 3,
    "split_counts": {"train": 24, "val": 6, "test": 6},
}
FIT = FitConfig(epochs=15, lr=0.05, weight_decay=1e-6, batch_size=128, step_size=100, gamma=1.0)
OPTIONS = ProbeOptions(rank=8, hidden=64, layers=3)


@pytest.fixture(autouse=True)
def one_thread():
    """2 shared cores: intra-op threads only add contention for these tiny matmuls."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def world():
    return ColorShapeWorld(SMALL_WORLD)


@pytest.fixture(scope="module")
def codes(world):
    """split -> (O (N, 16), F (N, 8)) sampled by the world from its train F codes."""
    out = {}
    for seed, (split, n) in enumerate((("train", 3000), ("val", 600), ("test", 600))):
        rng = np.random.default_rng(seed)
        feature_codes = world.feature_codes_by_split["train"]
        objects = np.zeros((n, 16), np.uint8)
        features = np.zeros((n, 8), np.uint8)
        for i in range(n):
            bits = feature_codes[rng.integers(len(feature_codes))]
            objects[i, world.sample_objects(rng, bits)] = 1
            features[i] = [int(b) for b in bits]
        out[split] = (objects, features)
    return out


def tagged_binding(
    objects: np.ndarray, seed: int, n_colors: int = 4, n_shapes: int = 4
) -> np.ndarray:
    """Binding readable only quadratically: object j adds sigma_j e_t(j) to its colour's and
    its shape's row, with a fresh random sign sigma_j and distinct slot t(j) per object.

    <colour row c, shape row s> = #objects (c, s) (the slots are orthogonal), but any linear
    function of the rows has a sign-symmetric distribution given O: zero linear signal.
    """
    rng = np.random.default_rng(seed)
    slots = int(objects.sum(1).max())
    color_rows = np.zeros((len(objects), n_colors, slots))
    shape_rows = np.zeros((len(objects), n_shapes, slots))
    for i, code in enumerate(objects):
        for slot, k in zip(rng.permutation(slots), np.flatnonzero(code), strict=False):
            sign = rng.choice([-1.0, 1.0])
            color_rows[i, k // n_shapes, slot] += sign
            shape_rows[i, k % n_shapes, slot] += sign
    return np.concatenate(
        [color_rows.reshape(len(objects), -1), shape_rows.reshape(len(objects), -1)], 1
    )


def splits_of(codes, represent) -> dict[str, BindingSplit]:
    return {
        split: BindingSplit(represent(o, f, seed).astype(np.float32), o, f)
        for seed, (split, (o, f)) in enumerate(codes.items())
    }


def test_small_world_entropy_is_log2_of_covering_subsets(world):
    # 3 of the 4 cells of a 2x2 grid always cover both rows and columns: N = 4.
    assert conditional_object_entropy(2, 2, 3) == pytest.approx(2.0)
    assert world.entropies("train") == pytest.approx(
        {"H_F": np.log2(24), "H_O_given_F": 2.0, "H_O": np.log2(24) + 2}
    )


def test_binding_scores_follow_the_definitions():
    scores = binding_scores(ce_o=3.0, ce_f=1.0, entropies={"H_O": 8.0, "H_O_given_F": 4.0})
    assert scores["B_O"] == 5.0 and scores["beta"] == pytest.approx(5 / 8)
    assert scores["B_star"] == 2.0 and scores["beta_star"] == pytest.approx(0.5)


def test_teacher_forcing_hides_each_label_and_later_ones_from_its_head():
    torch.manual_seed(0)
    for family in ("linear", "quadratic", "shared_quadratic", "dnn"):
        probe = make_probe(family, 5, 16, rank=4, hidden=8, layers=3, groups=(4, 4))
        z, labels = torch.randn(2, 5), torch.randint(0, 2, (2, 16)).float()
        changed = labels.clone()
        changed[:, 7:] = 1 - changed[:, 7:]
        before, after = probe(z, labels), probe(z, changed)
        assert torch.equal(before[:, :8], after[:, :8]), family  # heads 0..7 see labels < 8 only
        assert not torch.allclose(before[:, 8:], after[:, 8:]), family


def test_attention_probe_reads_tokens_and_is_teacher_forced():
    probe = make_probe("attention", 6, 16, rank=4)
    tokens, labels = torch.randn(3, 1 + 9, 6), torch.randint(0, 2, (3, 16)).float()
    logits = probe(tokens, labels)
    assert logits.shape == (3, 16)
    assert torch.allclose(probe.attention(tokens, labels).sum(-1), torch.ones(3, 16))
    changed = labels.clone()
    changed[:, 10:] = 1 - changed[:, 10:]
    assert torch.equal(logits[:, :11], probe(tokens, changed)[:, :11])


def test_attention_queries_equal_the_projection_of_summed_query_vectors():
    # The probe projects e_k and g_i separately; the defining formula projects their sum.
    torch.manual_seed(0)
    probe = make_probe("attention", 8, 16, rank=4)
    tokens, labels = torch.randn(5, 1 + 9, 8), torch.randint(0, 2, (5, 16)).float()
    offset = ((labels - 0.5)[:, None, :] * torch.tril(torch.ones(16, 16), -1)) @ probe.label_query
    queries = probe.query(probe.head_query + offset)
    scores = torch.einsum("bkd,bnd->bkn", queries, tokens[:, 1:]) / 8**0.5
    torch.testing.assert_close(
        probe.attention(tokens, labels), scores.softmax(-1), atol=1e-6, rtol=1e-5
    )


def test_bits_per_image_is_summed_bce_in_bits():
    probe = make_probe("linear", 3, 4)
    torch.nn.init.zeros_(probe.weight), torch.nn.init.zeros_(probe.label_weight)
    data = ProbeData(np.zeros((10, 3), np.float32), np.ones((10, 4), np.uint8))
    assert bits_per_image(probe, data) == pytest.approx(4.0)  # q = 1/2 per bit, 4 bits


def test_object_code_oracle_has_full_binding_information(world, codes):
    results, _ = measure_binding(
        splits_of(codes, lambda o, f, s: o),
        "quadratic",
        world.entropies("train"),
        options=OPTIONS,
        fit=FIT,
    )
    print("z = O:", {k: round(results[k], 3) for k in ("CE_O", "CE_F", "beta", "beta_star")})
    assert results["beta"] >= 0.95
    assert results["CE_O"] < 0.25


def test_feature_code_alone_has_no_binding_information(world, codes):
    results, _ = measure_binding(
        splits_of(codes, lambda o, f, s: f),
        "dnn",
        world.entropies("train"),
        options=OPTIONS,
        # weight decay as the pipeline default: with the loss averaged over heads, 1e-4
        # underfits O|F by ~0.1 bit (beta* -0.06)
        fit=FitConfig(
            epochs=25, lr=0.02, weight_decay=1e-6, batch_size=128, step_size=10, gamma=0.3
        ),
    )
    print("z = F:", {k: round(results[k], 3) for k in ("CE_O", "CE_F", "beta", "beta_star")})
    assert results["CE_F"] < 0.02  # F is read off exactly
    assert abs(results["beta_star"]) <= 0.05  # and O|F costs its full H(O|F) = 2 bits


def test_quadratically_bound_representation_is_invisible_to_linear_probes(world, codes):
    def represent(o, f, seed):
        return np.concatenate([f, tagged_binding(o, seed)], 1)

    splits, entropies = splits_of(codes, represent), world.entropies("train")
    linear, _ = measure_binding(splits, "linear", entropies, options=OPTIONS, fit=FIT)
    feature_only, _ = measure_binding(
        splits_of(codes, lambda o, f, s: f), "linear", entropies, options=OPTIONS, fit=FIT
    )
    quadratic, _ = measure_binding(splits, "quadratic", entropies, options=OPTIONS, fit=FIT)
    print(
        "tagged: linear",
        round(linear["beta_star"], 3),
        "F-only linear",
        round(feature_only["beta_star"], 3),
        "quadratic",
        round(quadratic["beta_star"], 3),
    )
    # The linear probe sees no binding beyond what F alone gives it ...
    assert linear["beta_star"] <= feature_only["beta_star"] + 0.05
    assert linear["beta_star"] <= 0.05
    # ... while a rank-8 quadratic reads most of the 2 bits of O|F.
    assert quadratic["beta_star"] >= 0.8


def test_a_seeded_probe_starts_the_same_whatever_ran_before_it():
    from components.probes.same_object import make_pair_probe

    first = make_probe("attention", 8, 16, rank=4, seed=3).state_dict()
    torch.rand(1000)  # another probe's init or shuffle in the same process
    again = make_probe("attention", 8, 16, rank=4, seed=3).state_dict()
    assert all(torch.equal(first[k], again[k]) for k in first)
    other = make_probe("attention", 8, 16, rank=4, seed=4).state_dict()
    assert not torch.equal(first["head_query"], other["head_query"])
    pair = make_pair_probe("quadratic", 8, seed=3).state_dict()
    torch.rand(1000)
    assert torch.equal(pair["w"], make_pair_probe("quadratic", 8, seed=3).state_dict()["w"])
