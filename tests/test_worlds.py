"""Synthetic worlds: determinism, coverage hygiene, masks, negatives, ColorShape entropies."""

from __future__ import annotations

import io
import itertools
import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from components.data.concepts import ConceptSpace, coverage_split
from components.data.synthetic import SceneRowBuilder, SyntheticSpec
from components.data.worlds import get_world
from components.data.worlds.colorshape_entropy import count_covering_subsets
from components.parsing.scene_graph import SceneGraph


def _builder(world: str, split: str, coverage: float = 0.5, seed: int = 7, size: int = 48):
    return SceneRowBuilder(SyntheticSpec(world, seed, coverage, size), split)


def _graph_objects(world, graph: dict) -> list[int]:
    """Object indices a graph names (negated ones too), via the world's vocabulary."""
    indices = []
    for obj in SceneGraph.from_dict(graph).objects:
        named = dict(zip(world.attribute_concepts, obj.attributes, strict=True))
        named[world.name_concept] = obj.name
        indices.append(world.space.index_of_values(tuple(named[c] for c in world.space.names)))
    return indices


@settings(max_examples=15, deadline=None)
@given(index=st.integers(0, 10_000), seed=st.integers(0, 50))
def test_rows_are_a_pure_function_of_seed_split_and_index(index, seed):
    first = _builder("clevr", "train", seed=seed).row(index)
    second = _builder("clevr", "train", seed=seed).row(index)
    assert first == second
    other_split = _builder("clevr", "test_heldout", seed=seed).row(index)
    assert other_split["id"] != first["id"] and other_split["image"] != first["image"]


def test_coverage_split_is_seeded_and_partitions_the_object_space():
    space = ConceptSpace.from_mapping({"color": list("abcdefgh"), "shape": list("xyz")})
    split = coverage_split(space, 0.5, seed=3)
    assert split == coverage_split(space, 0.5, seed=3)
    assert split != coverage_split(space, 0.5, seed=4)
    assert split.seen | split.heldout == set(range(24)) and not split.seen & split.heldout
    assert len(split.seen) == 12


def test_cover_values_puts_every_concept_value_in_the_seen_set():
    space = ConceptSpace.from_mapping({"color": list("abcdefghij"), "shape": list("vwxyz")})
    misses = {False: 0, True: 0}
    for seed in range(20):
        for cover in misses:
            split = coverage_split(space, 0.2, seed, cover_values=cover)
            assert len(split.seen) == 10 and split.seen | split.heldout == set(range(50))
            seen = [{space.value_indices(i)[c] for i in split.seen} for c in range(2)]
            misses[cover] += sum(len(v) - len(s) for v, s in zip(space.values, seen, strict=True))
    assert misses[False] > 0  # 10 random objects of 50 leave some colour unseen
    assert misses[True] == 0
    with pytest.raises(ValueError, match="cover every concept value"):
        coverage_split(space, 0.1, 0, cover_values=True)  # 5 objects cannot show 10 colours


@pytest.mark.parametrize("world_name", ["clevr", "clevr_pairs"])
def test_no_heldout_object_in_any_train_image_caption_or_negative(world_name):
    builder = _builder(world_name, "train")
    world, heldout = builder.world, builder.coverage.heldout
    named = 0
    for index in range(60):
        row = builder.row(index)
        assert not {o["object_index"] for o in row["objects"]} & heldout
        assert not set(_graph_objects(world, row["graph"])) & heldout
        for negative in row["negatives"]:
            for graph in (negative["graph"], negative["positive_graph"]):
                if graph is not None:
                    assert not set(_graph_objects(world, graph)) & heldout, negative["caption"]
                    named += 1
    assert named > 100
    test_row = _builder(world_name, "test_heldout").row(0)
    assert {o["object_index"] for o in test_row["objects"]} <= heldout


def test_masks_agree_with_objects():
    builder = _builder("clevr", "train", size=64)
    for index in range(20):
        row = builder.row(index)
        mask = np.asarray(Image.open(io.BytesIO(row["mask"])))
        assert mask.shape == (64, 64)
        assert set(np.unique(mask)) <= set(range(len(row["objects"]) + 1))
        for i, obj in enumerate(row["objects"]):
            ys, xs = np.nonzero(mask == i + 1)
            assert len(xs) > 0, f"object {i} fully occluded in {row['id']}"
            x0, y0, x1, y1 = (v * 64 for v in obj["bbox"])
            assert xs.min() >= math.floor(x0) - 1 and xs.max() <= math.ceil(x1) + 1
            assert ys.min() >= math.floor(y0) - 1 and ys.max() <= math.ceil(y1) + 1


def _object_multiset(graph: SceneGraph) -> Counter:
    return Counter((o.attributes, o.name, o.negated) for o in graph.objects)


def _swapped_values(pos: SceneGraph, neg: SceneGraph) -> int:
    """How many nodes changed, comparing node by node after aligning on names+relations."""
    return sum(a != b for a, b in zip(pos.objects, neg.objects, strict=True))


def test_every_negative_differs_from_its_positive_in_exactly_the_intended_way():
    builder = _builder("clevr", "test_heldout", coverage=0.7)
    world = builder.world
    color = world.attribute_concepts.index("color")
    seen_kinds = Counter()
    for index in range(40):
        row = builder.row(index)
        positive = SceneGraph.from_dict(row["graph"])
        for negative in row["negatives"]:
            kind = negative["kind"]
            seen_kinds[kind] += 1
            graph = SceneGraph.from_dict(negative["graph"])
            assert negative["caption"] != row["caption"]
            if kind in ("swap_att", "swap_obj", "replace_att"):
                # same nodes in the same places, relations untouched
                assert [r.predicate for r in graph.relations] == [
                    r.predicate for r in positive.relations
                ]
                assert [(r.subject, r.object) for r in graph.relations] == [
                    (r.subject, r.object) for r in positive.relations
                ]
                changed = [
                    (a, b) for a, b in zip(positive.objects, graph.objects, strict=True) if a != b
                ]
                if kind == "replace_att":
                    assert len(changed) == 1
                    ((a, b),) = changed
                    assert a.name == b.name and a.attributes[color] != b.attributes[color]
                else:
                    assert len(changed) == 2
                    (a1, b1), (a2, b2) = changed
                    if kind == "swap_att":
                        assert (b1.attributes[color], b2.attributes[color]) == (
                            a2.attributes[color],
                            a1.attributes[color],
                        )
                        assert (a1.name, a2.name) == (b1.name, b2.name)
                    else:
                        assert (b1.name, b2.name) == (a2.name, a1.name)
                        assert (a1.attributes, a2.attributes) == (b1.attributes, b2.attributes)
                    assert _object_multiset(graph) != _object_multiset(positive)
            elif kind in ("replace_rel", "swap_rel"):
                assert _object_multiset(graph) == _object_multiset(positive)
                pos_triples, neg_triples = Counter(positive.triples()), Counter(graph.triples())
                removed, added = pos_triples - neg_triples, neg_triples - pos_triples
                assert sum(removed.values()) == 1 and sum(added.values()) == 1
                ((s, p, o),) = removed
                ((s2, p2, o2),) = added
                if kind == "swap_rel":
                    assert (s2, p2, o2) == (o, p, s)
                else:
                    assert (s2, o2) == (s, o) and p2 != p
            elif kind == "negation":
                anchor = SceneGraph.from_dict(negative["positive_graph"] or row["graph"])
                present = {(o.attributes, o.name) for o in positive.objects if not o.negated}
                neg_false = [o for o in graph.objects if o.negated]
                neg_true = [o for o in anchor.objects if o.negated]
                assert len(neg_false) == 1 and len(neg_true) == 1
                assert (neg_false[0].attributes, neg_false[0].name) in present
                assert (neg_true[0].attributes, neg_true[0].name) not in present
    assert set(seen_kinds) == {
        "swap_att",
        "swap_obj",
        "replace_att",
        "replace_rel",
        "swap_rel",
        "negation",
    }


def test_counterfactual_image_differs_from_the_original():
    row = _builder("clevr_pairs", "test_heldout").row(3)
    images = [n["image"] for n in row["negatives"] if n["image"] is not None]
    assert images and all(image != row["image"] for image in images)


# -- ColorShape -------------------------------------------------------------------------
def test_colorshape_feature_code_split_matches_the_paper():
    world = get_world("colorshape")
    splits = world.feature_codes_by_split
    assert len(world.all_feature_codes) == math.comb(8, 6) ** 2 == 784
    assert {k: len(v) for k, v in splits.items()} == {"train": 522, "val": 131, "test": 131}
    assert not set(splits["train"]) & set(splits["test"]) and not set(splits["val"]) & set(
        splits["test"]
    )
    entropies = world.entropies("train")
    assert entropies["H_F"] == pytest.approx(math.log2(522))
    assert entropies["H_O"] == pytest.approx(entropies["H_F"] + entropies["H_O_given_F"])


@pytest.mark.parametrize(
    "a,b,k", [(2, 2, 2), (2, 2, 3), (3, 3, 3), (3, 3, 4), (3, 3, 5), (2, 3, 4)]
)
def test_inclusion_exclusion_count_equals_brute_force(a, b, k):
    cells = list(itertools.product(range(a), range(b)))
    brute = sum(
        1
        for subset in itertools.combinations(cells, k)
        if {c for c, _ in subset} == set(range(a)) and {s for _, s in subset} == set(range(b))
    )
    assert count_covering_subsets(a, b, k) == brute


def test_colorshape_sampling_is_uniform_over_valid_object_codes_on_a_3x3_world():
    spec = {
        "name": "tiny",
        "kind": "colorshape",
        "concepts": {"color": ["red", "blue", "green"], "shape": ["circle", "square", "star"]},
        "colors_per_scene": 2,
        "shapes_per_scene": 2,
        "objects_per_scene": 3,
        "split_counts": {"train": 5, "val": 2, "test": 2},
    }
    from components.data.worlds.colorshape import ColorShapeWorld

    world = ColorShapeWorld(spec)
    rng = np.random.default_rng(0)
    feature_bits = "110" + "101"  # red, blue x circle, star
    draws = Counter(tuple(world.sample_objects(rng, feature_bits)) for _ in range(4000))
    assert len(draws) == count_covering_subsets(2, 2, 3) == 4
    frequencies = np.array(list(draws.values())) / 4000
    assert np.all(np.abs(frequencies - 0.25) < 0.03)
    empirical_entropy = -np.sum(frequencies * np.log2(frequencies))
    assert empirical_entropy == pytest.approx(math.log2(4), abs=0.01)


def test_colorshape_scene_has_18_objects_covering_6_colours_and_6_shapes():
    row = _builder("colorshape", "train", coverage=1.0, size=256).row(0)
    values = [tuple(o["values"]) for o in row["objects"]]
    assert len(set(values)) == 18
    assert len({c for c, _ in values}) == 6 and len({s for _, s in values}) == 6
    assert sum(row["object_code"]) == 18 and sum(row["feature_code"]) == 12


@pytest.mark.parametrize("world_name", ["clevr", "clevr_pairs"])
def test_val_heldout_exists_and_shares_no_scene_with_test_heldout(world_name):
    world = get_world(world_name)
    assert "val_heldout" in [s.name for s in world.split_specs()]
    coverage = coverage_split(world.space, 0.7, 7)
    val, test = _builder(world_name, "val_heldout", 0.7), _builder(world_name, "test_heldout", 0.7)
    assert val.allowed <= coverage.heldout and test.allowed <= coverage.heldout

    def scenes(builder):
        rows = [builder.row(i) for i in range(12)]
        layouts = {tuple((o["object_index"], *o["bbox"]) for o in r["objects"]) for r in rows}
        return {r["id"] for r in rows}, {r["image"] for r in rows}, layouts

    val_ids, val_images, val_layouts = scenes(val)
    test_ids, test_images, test_layouts = scenes(test)
    assert not val_ids & test_ids and not val_images & test_images
    assert not val_layouts & test_layouts


def test_a_world_with_enough_heldout_objects_halves_them_between_val_and_test():
    big = _builder("clevr", "val_heldout", 0.7).allowed  # 29 held-out objects
    assert not big & _builder("clevr", "test_heldout", 0.7).allowed
    assert abs(len(big) - 29 / 2) <= 0.5
    small = _builder("clevr_pairs", "val_heldout", 0.7).allowed  # 8: too few to halve
    assert small == _builder("clevr_pairs", "test_heldout", 0.7).allowed and len(small) == 8
