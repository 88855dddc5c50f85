"""Controlled token world, dual encoder, loss, strict metric and the coverage trainer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from components.data.controlled_world import TokenWorld
from components.models.controlled.controlled import (
    ControlledDualEncoder,
    ControlledModelConfig,
    bag_of_concepts_chance,
    concept_labels,
    eos_index,
    object_labels,
    recognition_chance,
    recognition_correct,
    soft_target_loss,
)
from components.training.controlled_trainer import (
    ControlledTrainConfig,
    object_splits,
    train_controlled,
    training_queries,
)

WORLD = TokenWorld(num_concepts=2, num_values=20, max_objects=2)
TINY = ControlledModelConfig(d_model=32, num_heads=2, num_layers=1, ffn_dim=64, d_out=16)


def test_vocabulary_and_length_match_the_paper():
    assert (WORLD.vocab_size, WORLD.seq_len) == (44, 9)
    assert (WORLD.soo, WORLD.eoo, WORLD.eos, WORLD.pad) == (40, 41, 42, 43)


def test_scene_tokens_use_per_concept_offsets_then_eos_then_pad():
    red_cube, blue_sphere = 3 * 20 + 7, 5 * 20 + 11  # values (3, 7) and (5, 11)
    tokens = WORLD.tokenize_scenes(torch.tensor([[red_cube, blue_sphere], [red_cube, -1]]))
    assert tokens[0].tolist() == [40, 3, 27, 41, 40, 5, 31, 41, 42]
    assert tokens[1].tolist() == [40, 3, 27, 41, 42, 43, 43, 43, 43]


def test_queries_are_token_then_eos_and_object_block_then_eos():
    assert WORLD.concept_queries(torch.tensor([27])).tolist() == [[27, 42]]
    assert WORLD.object_queries(torch.tensor([3 * 20 + 7])).tolist() == [[40, 3, 27, 41, 42]]


def test_readout_index_is_eos_not_last_or_pad():
    tokens = WORLD.tokenize_scenes(torch.tensor([[5, 9], [5, -1]]))
    assert eos_index(tokens, WORLD.eos).tolist() == [8, 4]
    with pytest.raises(ValueError, match="EOS"):
        eos_index(torch.full((1, 9), WORLD.pad), WORLD.eos)


def test_encoder_output_ignores_padding_and_reads_at_eos():
    """PAD positions are masked: the embedding equals that of the sequence cut after EOS."""
    torch.manual_seed(0)
    model = ControlledDualEncoder(WORLD, TINY).eval()
    tokens = WORLD.tokenize_scenes(torch.tensor([[5, -1]]))  # EOS at 4, PAD at 5..8
    with torch.no_grad():
        padded = model.scene_encoder(tokens)
        cut = model.scene_encoder(tokens[:, :5])
        other = model.scene_encoder(WORLD.tokenize_scenes(torch.tensor([[6, -1]])))
    assert torch.allclose(padded, cut, atol=1e-5)
    assert not torch.allclose(padded, other, atol=1e-3)


def test_object_values_round_trip_and_match_concept_space():
    objects = torch.arange(WORLD.num_objects)
    values = WORLD.object_values(objects)
    assert torch.equal(WORLD.values_to_objects(values), objects)
    space = WORLD.concept_space()
    assert tuple(values[127].tolist()) == space.value_indices(127)


def test_attribute_swap_copies_one_value_from_the_other_object():
    generator = torch.Generator().manual_seed(0)
    objects = torch.tensor([[3 * 20 + 7, 5 * 20 + 11]] * 50)
    swaps = WORLD.attribute_swaps(objects, generator)
    assert set(swaps.tolist()) <= {3 * 20 + 11, 5 * 20 + 7}
    assert len(set(swaps.tolist())) == 2
    assert WORLD.attribute_swaps(torch.tensor([[4, -1]]), generator).numel() == 0


def test_swap_equal_to_present_object_is_labelled_positive():
    same_colour = torch.tensor([[3 * 20 + 7, 3 * 20 + 11]])
    swaps = WORLD.attribute_swaps(same_colour.repeat(20, 1), torch.Generator().manual_seed(1))
    labels = object_labels(same_colour, swaps.unique())
    positives = {3 * 20 + 7, 3 * 20 + 11}
    assert labels[0].tolist() == [q in positives for q in swaps.unique().tolist()]


def test_concept_labels_mark_tokens_present_in_the_scene():
    objects = torch.tensor([[3 * 20 + 7, -1]])
    labels = concept_labels(WORLD, objects, torch.tensor([3, 27, 7, 23]))
    assert labels.tolist() == [[True, True, False, False]]


def naive_soft_loss(logits: torch.Tensor, labels: torch.Tensor) -> float:
    total, rows = 0.0, 0
    for row, hot in zip(logits.tolist(), labels.tolist(), strict=True):
        if not any(hot):
            continue
        norm = math.log(sum(math.exp(x) for x in row))
        total += -sum((1 / sum(hot)) * (x - norm) for x, h in zip(row, hot, strict=True) if h)
        rows += 1
    return total / rows


def naive_strict(logits: torch.Tensor, labels: torch.Tensor) -> list[bool]:
    out = []
    for row, hot in zip(logits.tolist(), labels.tolist(), strict=True):
        if not any(hot):
            continue
        present = [x for x, h in zip(row, hot, strict=True) if h]
        absent = [x for x, h in zip(row, hot, strict=True) if not h]
        out.append(all(p > a for p in present for a in absent))
    return out


def test_soft_target_loss_matches_naive_and_skips_rows_without_positives():
    torch.manual_seed(0)
    logits = torch.randn(6, 7)
    labels = torch.rand(6, 7) < 0.3
    labels[2] = False
    labels[3, 0] = True
    assert soft_target_loss(logits, labels).item() == pytest.approx(
        naive_soft_loss(logits, labels), rel=1e-5
    )


def test_single_positive_loss_equals_cross_entropy():
    logits = torch.randn(4, 5)
    labels = F.one_hot(torch.tensor([0, 3, 1, 4]), 5).bool()
    expected = F.cross_entropy(logits, torch.tensor([0, 3, 1, 4]))
    assert soft_target_loss(logits, labels).item() == pytest.approx(expected.item(), rel=1e-6)


def test_strict_metric_matches_naive_every_present_above_every_absent():
    torch.manual_seed(1)
    logits = torch.randn(200, 6)
    labels = torch.rand(200, 6) < 0.4
    assert recognition_correct(logits, labels).tolist() == naive_strict(logits, labels)


def test_strict_metric_fails_when_one_present_is_below_one_absent():
    logits = torch.tensor([[3.0, 1.0, 2.0]])
    assert recognition_correct(logits, torch.tensor([[True, True, False]])).tolist() == [False]
    assert recognition_correct(logits, torch.tensor([[True, False, False]])).tolist() == [True]


def test_chance_is_inverse_binomial():
    labels = torch.tensor([[True, False, False, False], [True, True, False, False]])
    assert recognition_chance(labels) == pytest.approx((1 / 4 + 1 / 6) / 2)


def test_bag_of_concepts_level_matches_cases_and_a_simulated_unbound_model():
    """Differ in both concepts: 4 consistent objects, 2 present -> 1/6; share one -> 1."""
    world = TokenWorld(2, 6, 2)
    scenes = torch.tensor([[0 * 6 + 1, 2 * 6 + 3], [0 * 6 + 1, 0 * 6 + 3], [7, 7], [7, -1]])
    assert bag_of_concepts_chance(world, scenes).tolist() == pytest.approx([1 / 6, 1, 1, 1])
    # An unbound model: each object scores by how many of its values the scene holds, with
    # random tie-breaking. Its strict accuracy over many draws is the closed form.
    generator = torch.Generator().manual_seed(0)
    objects = world.sample_scenes(torch.arange(world.num_objects), 4000, generator)
    scene_values = world.object_values(objects)  # (B, M, C)
    candidate_values = world.object_values(torch.arange(world.num_objects))  # (O, C)
    held = (scene_values[:, :, None, :] == candidate_values[None, None]) & (objects >= 0)[
        ..., None, None
    ]  # (B, M, O, C)
    logits = held.any(1).float().sum(-1) + 1e-3 * torch.rand(len(objects), world.num_objects)
    simulated = recognition_correct(logits, object_labels(objects, torch.arange(36))).float()
    assert simulated.mean().item() == pytest.approx(
        bag_of_concepts_chance(world, objects).mean().item(), abs=0.02
    )


@pytest.mark.parametrize("coverage", [0.2, 0.5, 0.9])
def test_no_heldout_object_in_any_training_scene_or_negative(coverage):
    world = TokenWorld(2, 6, 2)
    splits = object_splits(world, coverage, seed=3, val_fraction=0.5)
    seen = set(splits.seen.tolist())
    assert seen.isdisjoint(splits.val.tolist()) or not splits.val_is_heldout
    assert seen.isdisjoint(splits.test.tolist())
    assert len(seen) + len(splits.test) + splits.val_is_heldout * len(splits.val) == 36
    allowed = torch.zeros(world.num_objects, dtype=torch.bool)
    allowed[splits.seen] = True
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        objects = world.sample_scenes(splits.seen, 256, generator)
        assert set(objects[objects >= 0].tolist()) <= seen
        _, queries = training_queries(world, objects, allowed, 64, generator)
        assert set(queries.tolist()) <= seen


def test_split_is_a_pure_function_of_world_coverage_seed():
    world = TokenWorld(2, 10, 2)
    first, again = object_splits(world, 0.3, 7, 0.5), object_splits(world, 0.3, 7, 0.5)
    assert torch.equal(first.seen, again.seen) and torch.equal(first.test, again.test)
    assert not torch.equal(first.seen, object_splits(world, 0.3, 8, 0.5).seen)


def test_training_learns_seen_objects_and_resumes_exactly():
    """A short run beats chance by far, and resuming from a mid-run state gives the same end."""
    world = TokenWorld(2, 4, 2)
    config = ControlledTrainConfig(
        steps=120, batch_size=64, lr=3e-3, eval_every=60, eval_scenes=128
    )
    states = []
    result = train_controlled(world, 0.75, TINY, config, on_eval=lambda m, s: states.append(s))
    assert result.history[-1]["seen_concept_acc"] > 0.5
    assert result.history[-1]["seen_object_acc"] > 5 * result.history[-1]["seen_object_chance"]
    resumed = train_controlled(world, 0.75, TINY, config, resume_state=states[0])
    assert resumed.history[-1]["train_loss"] == pytest.approx(
        result.history[-1]["train_loss"], rel=1e-4
    )
    assert np.isfinite(result.metrics["test_object_acc"])
