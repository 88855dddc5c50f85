"""Additive decomposition, recognition probes and complexity approximators on synthetic embeddings."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from components.data.controlled_world import TokenWorld
from components.models.controlled.controlled import ControlledModelConfig
from components.probes.additive import additive_decomposition, fit_additive, targeted_removal
from components.probes.complexity import (
    Approximator,
    ComplexityConfig,
    complexity_sweep,
    controlled_binding_function,
    controlled_scene_embeddings,
    scene_groups,
)
from components.probes.recognition import train_linear_probe

VALUE_SIZES = (4, 5)  # 20 objects
NUM_OBJECTS = 20
DIM = 32


def all_pairs() -> np.ndarray:
    """Every ordered 2-object scene: (400, 2) object ids."""
    return np.array(list(itertools.product(range(NUM_OBJECTS), repeat=2)))


def concept_additive_embeddings(pairs: np.ndarray, seed: int = 0) -> np.ndarray:
    """Exactly additive at Level II: a vector per (slot, concept, value), summed."""
    rng = np.random.default_rng(seed)
    tables = rng.normal(size=(2, 2, max(VALUE_SIZES), DIM))
    values = np.stack(np.unravel_index(pairs, VALUE_SIZES), -1)  # (N, 2, 2)
    return sum(tables[k, c, values[:, k, c]] for k in range(2) for c in range(2)) + 3.0


def multiplicative_embeddings(pairs: np.ndarray, seed: int = 0) -> np.ndarray:
    """Elementwise product of per-(slot, concept) zero-mean vectors: no additive part."""
    rng = np.random.default_rng(seed)
    tables = rng.normal(size=(2, 2, max(VALUE_SIZES), DIM))
    values = np.stack(np.unravel_index(pairs, VALUE_SIZES), -1)
    return np.prod([tables[k, c, values[:, k, c]] for k in range(2) for c in range(2)], axis=0)


def test_additive_fit_recovers_r2_one_on_an_exactly_additive_embedding():
    pairs = all_pairs()
    scores = additive_decomposition(concept_additive_embeddings(pairs), pairs, VALUE_SIZES)
    assert scores["level1_r2"] == pytest.approx(1.0, abs=1e-6)
    assert scores["level2_r2"] == pytest.approx(1.0, abs=1e-6)


def test_additive_fit_gives_low_r2_on_a_multiplicative_embedding():
    pairs = all_pairs()
    scores = additive_decomposition(multiplicative_embeddings(pairs), pairs, VALUE_SIZES)
    assert scores["level2_r2"] < 0.1
    assert scores["level1_r2"] < 0.25  # per-slot object tables only absorb the within-object part


def test_object_level_fit_is_exact_when_objects_add_but_concepts_interact():
    """Level I captures per-object interactions that Level II cannot."""
    pairs = all_pairs()
    rng = np.random.default_rng(1)
    object_table = rng.normal(size=(2, NUM_OBJECTS, DIM))
    embeddings = object_table[0, pairs[:, 0]] + object_table[1, pairs[:, 1]]
    scores = additive_decomposition(embeddings, pairs, VALUE_SIZES)
    assert scores["level1_r2"] == pytest.approx(1.0, abs=1e-6)
    assert scores["level2_r2"] < 0.5


def test_fit_additive_matches_numpy_least_squares():
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 3, size=(60, 2))
    embeddings = rng.normal(size=(60, 4))
    fit = fit_additive(embeddings, codes, [3, 3])
    design = np.concatenate([np.eye(3)[codes[:, 0]], np.eye(3)[codes[:, 1]]], 1)
    centred = embeddings - embeddings.mean(0)
    solution = np.linalg.lstsq(design, centred, rcond=None)[0]
    residual = ((centred - design @ solution) ** 2).sum()
    assert fit.r2 == pytest.approx(1 - residual / (centred**2).sum(), abs=1e-6)


def test_linear_probe_reads_objects_from_a_random_object_embedding():
    pairs = all_pairs()
    rng = np.random.default_rng(3)
    table = rng.normal(size=(NUM_OBJECTS, DIM))
    embeddings = table[pairs[:, 0]] + table[pairs[:, 1]]
    probe = train_linear_probe(embeddings, pairs, VALUE_SIZES, epochs=300)
    scores = probe.accuracy(embeddings, pairs)
    assert scores["object_acc"] > 0.95 and scores["concept_acc"] > 0.9


def test_removing_the_object_component_destroys_recognition_but_permuted_control_does_not():
    pairs = all_pairs()
    rng = np.random.default_rng(4)
    table = rng.normal(size=(NUM_OBJECTS, DIM))
    embeddings = table[pairs[:, 0]] + table[pairs[:, 1]] + 0.01 * rng.normal(size=(len(pairs), DIM))
    results = targeted_removal(embeddings, pairs, VALUE_SIZES, probe_epochs=300)
    assert results["original"]["object_acc"] > 0.95
    assert results["minus_object"]["object_acc"] < 0.1
    assert results["permuted_object"]["object_acc"] > 0.8


def test_scene_groups_split_by_whether_every_slot_is_seen():
    pairs = np.array([[0, 1], [2, 3], [0, 3]])
    groups = scene_groups(pairs, seen_objects=[0, 1])
    assert groups["train"].tolist() == [True, False, False]
    assert groups["test"].tolist() == [False, True, False]
    assert groups["mixed"].tolist() == [False, False, True]


@pytest.mark.parametrize(
    "family", ["mlp", "additive", "object_product", "global_product", "sum_product"]
)
def test_every_approximator_maps_slot_values_to_embedding_shape(family):
    model = Approximator(family, VALUE_SIZES, slots=2, dim=DIM, table_dim=8, width=16)
    values = torch.tensor([[[1, 2], [3, 4]], [[0, 0], [2, 1]]])  # (N=2, K=2, C=2)
    assert model(values).shape == (2, DIM)


def test_additive_approximator_generalises_to_heldout_objects_of_an_additive_world():
    """On a Level-II additive binding function the additive family predicts unseen objects."""
    pairs = all_pairs()
    embeddings = concept_additive_embeddings(pairs)
    seen = np.random.default_rng(0).permutation(NUM_OBJECTS)[:14]
    config = ComplexityConfig(families=("additive",), epochs=400, lr=0.1, probe_epochs=300)
    results = complexity_sweep(embeddings, pairs, VALUE_SIZES, seen, config)
    assert results["additive"]["r2_test"] > 0.95
    assert results["additive"]["object_acc"] > 0.9 * results["real"]["object_acc"]


def test_controlled_scene_embeddings_cover_every_ordered_pair():
    world = TokenWorld(2, 3, 2)
    from components.models.controlled.controlled import ControlledDualEncoder

    model = ControlledDualEncoder(
        world, ControlledModelConfig(d_model=16, num_heads=2, num_layers=1, ffn_dim=32, d_out=8)
    )
    embeddings, pairs, probe = controlled_scene_embeddings(model)
    assert embeddings.shape == (81, 8) and pairs.shape == (81, 2)
    assert probe.object_weights.shape == (9, 8) and [len(w) for w in probe.concept_weights] == [
        3,
        3,
    ]
    assert probe.normalize


def test_controlled_binding_function_reads_the_model_as_its_own_metric_does():
    """The probe path (query rows, cosine) must rank objects as the model's logits do."""
    from components.models.controlled.controlled import (
        ControlledDualEncoder,
        object_labels,
        recognition_correct,
    )

    torch.manual_seed(0)
    world = TokenWorld(2, 3, 2)
    model = ControlledDualEncoder(
        world, ControlledModelConfig(d_model=16, num_heads=2, num_layers=1, ffn_dim=32, d_out=8)
    )
    config = ComplexityConfig(families=("additive", "global_product"), epochs=20, probe_epochs=1)
    metrics = controlled_binding_function(model, list(range(6)), config)

    heldout = torch.cartesian_prod(torch.arange(6, 9), torch.arange(6, 9))  # (9, 2)
    objects = torch.arange(world.num_objects)
    with torch.no_grad():
        logits = model.score(heldout, world.object_queries(objects))
    expected = recognition_correct(logits, object_labels(heldout, objects)).float().mean().item()
    assert metrics["real_object_acc"] == pytest.approx(expected)
    assert metrics["level1_r2"] >= metrics["level2_r2"] - 1e-9  # Level I nests Level II
    assert {"additive_object_acc", "global_product_r2_test"} <= set(metrics)


def test_targeted_removal_scores_probes_on_scenes_they_were_not_trained_on():
    """Pure noise per scene: a probe scored on its own training scenes memorises it (the old
    bug gave ~1.0); scored on the held-out 60% it is at chance."""
    pairs = all_pairs()
    noise = np.random.default_rng(5).normal(size=(len(pairs), 512))
    results = targeted_removal(noise, pairs, VALUE_SIZES, probe_epochs=200)
    assert results["original"]["object_acc"] < 0.1


def test_complexity_sweep_default_probe_is_scored_on_scenes_it_never_trained_on():
    """Noise embeddings: the 'real' row must be at chance, not memorised (old bug: ~1.0)."""
    pairs = all_pairs()
    noise = np.random.default_rng(6).normal(size=(len(pairs), 512))
    seen = list(range(10))
    config = ComplexityConfig(families=("additive",), epochs=5, probe_epochs=200)
    results = complexity_sweep(noise, pairs, VALUE_SIZES, seen, config)
    assert results["real"]["object_acc"] < 0.1


def test_backbone_binding_function_renders_ordered_pairs_and_runs_every_analysis():
    """Any backbone can be asked: a random tiny ViT on clevr pairs (24 objects, 552 scenes)."""
    from components.data.worlds import get_world
    from components.models.backbone import build_backbone
    from components.probes.backbone_binding import backbone_binding_function, pair_embeddings

    torch.manual_seed(0)
    world, backbone = get_world("clevr_pairs"), build_backbone("tiny")
    swapped = pair_embeddings(backbone, world, np.array([[0, 5], [5, 0], [0, 5]]), 64)
    assert np.allclose(swapped[0], swapped[2])  # the layout is fixed: same pair, same image
    assert not np.allclose(swapped[0], swapped[1])  # the slots are ordered
    config = ComplexityConfig(families=("additive",), epochs=20, probe_epochs=20)
    result = backbone_binding_function(backbone, world, config=config)
    assert result["num_scenes"] == 24 * 23
    assert 0.0 <= result["level2_r2"] <= result["level1_r2"] + 1e-9 <= 1.0 + 1e-9
    assert {"original", "minus_object", "permuted_object"} <= set(result["targeted_removal"])
    assert {"real", "additive"} <= set(result["complexity"])
