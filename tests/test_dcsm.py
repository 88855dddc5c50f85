"""DCSM: token alignment of functional words, the feature cache, normalisation, checkpoints."""

from __future__ import annotations

import io

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from components.data.shards import write_shard
from components.data.synthetic import SceneRowBuilder, SyntheticSpec
from components.models.checkpoint import load_checkpoint, save_checkpoint
from components.models.dcsm.dcsm_maps import (
    functional_columns,
    replace_functional,
    similarity_maps,
    word_spans,
)
from components.models.dense_tokens import decode_array
from components.models.registry import create_model
from components.training.feature_cache import cache_features, feature_files

BACKBONE = {"name": "tiny", "image_size": 32}  # 4x4 patches + CLS = 17 image tokens
SPEC = SyntheticSpec("clevr_pairs", seed=3, coverage=0.7, image_size=32)


@pytest.fixture(scope="module")
def rows():
    return SceneRowBuilder(SPEC, "train").table(list(range(6)))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("dcsm", BACKBONE, context_length=20).eval()


@pytest.fixture(scope="module")
def feature_rows(rows):
    """Cache rows of ``rows`` from a seeded random-init backbone, as the trainer reads them."""
    from components.training.feature_cache import ShardFeatures

    torch.manual_seed(0)
    return ShardFeatures(BACKBONE, context_length=20)(rows).to_pylist()


def images_of(table, n):
    return [Image.open(io.BytesIO(b)).convert("RGB") for b in table.column("image").to_pylist()[:n]]


def test_multi_token_functional_word_replaces_all_its_columns_and_no_other(model):
    tokenizer = model.backbone.tokenizer
    assert len(tokenizer.encode("counterclockwise")) == 2  # a word BPE splits in two
    caption = "a red cube counterclockwise of a blue sphere"
    start = 1 + len(tokenizer.encode("a red cube"))  # BOS at 0
    spans = word_spans(tokenizer, caption)
    assert ("counterclockwise", start, start + 2) in spans

    columns = functional_columns(tokenizer, [caption], ["counterclockwise"], 20)
    assert torch.nonzero(columns[0]).flatten().tolist() == [start, start + 1]

    signatures = torch.rand(1, model.map_size[0])
    image_tokens, text_tokens = model.dense_features(
        images_of(SceneRowBuilder(SPEC, "train").table([0]), 1), [caption]
    )
    maps = similarity_maps(image_tokens, text_tokens)  # (1, 1, 17, 20)
    replaced = replace_functional(maps, columns, signatures)
    changed = (replaced != maps).any(dim=2)[0, 0]  # (Lt,) columns that differ anywhere
    assert torch.nonzero(changed).flatten().tolist() == [start, start + 1]
    assert torch.equal(replaced[0, 0, :, start], signatures[0])
    assert torch.equal(replaced[0, 0, :, start + 1], signatures[0])


def test_default_lexicon_marks_spatial_and_negation_words_in_our_captions(model):
    caption = "a cyan cube to the left of a red sphere, and no blue cube"
    columns = model.functional([caption])[0]
    words = {word: start for word, start, _ in word_spans(model.backbone.tokenizer, caption)}
    lexicon = model.options["lexicon"]
    assert torch.nonzero(columns).flatten().tolist() == [words["left"], words["no"]]
    assert columns[words["left"]] == lexicon.index("left") + 1
    assert columns[words["no"]] == lexicon.index("no") + 1


def test_feature_cache_round_trip_equals_fresh_computation(ray_cluster, tmp_path, rows, model):
    write_shard(rows, tmp_path / "train" / "part-00000.parquet")
    # A random-init backbone is only reproducible through its weights: hand actors a checkpoint.
    backbone = {"checkpoint": str(save_checkpoint(model, tmp_path / "backbone"))}
    card = cache_features(
        tmp_path / "train", tmp_path / "cache", backbone, context_length=20, batch_size=4
    )
    assert card["rows"] == 6 and card["image_tokens"] == [17, 128]
    assert card["text_tokens"] == [20, 128]
    cached = pq.read_table(feature_files(tmp_path / "cache")).to_pylist()
    cached = sorted(cached, key=lambda r: r["id"])
    source = sorted(rows.to_pylist(), key=lambda r: r["id"])
    assert [r["id"] for r in cached] == [r["id"] for r in source]

    images = [r["image"] for r in source]
    counterfactuals = [n["image"] for r in source for n in r["negatives"] if n["image"]]
    texts = [r["caption"] for r in source] + [n["caption"] for r in source for n in r["negatives"]]
    fresh_images, fresh_texts = model.dense_features(images + counterfactuals, texts)
    got_images = [decode_array(r["image_tokens"], (17, 128)) for r in cached]
    got_images += [
        decode_array(n["image_tokens"], (17, 128))
        for r in cached
        for n in r["negatives"]
        if n["image_tokens"]
    ]
    got_texts = [decode_array(r["caption_tokens"], (20, 128)) for r in cached]
    got_texts += [
        decode_array(n["caption_tokens"], (20, 128)) for r in cached for n in r["negatives"]
    ]
    assert len(got_images) == len(images) + len(counterfactuals) > len(images)
    torch.testing.assert_close(
        torch.from_numpy(np.stack(got_images)).float(), fresh_images, atol=2e-3, rtol=0
    )
    torch.testing.assert_close(
        torch.from_numpy(np.stack(got_texts)).float(), fresh_texts, atol=2e-3, rtol=0
    )

    again = cache_features(tmp_path / "train", tmp_path / "cache", backbone, context_length=20)
    assert again["seconds"] == card["seconds"]  # reused, not recomputed


def test_per_map_normalisation_makes_a_score_independent_of_other_candidates(rows):
    image = images_of(rows, 1)
    a, b, c = (
        "a red cube to the left of a blue sphere",
        "a blue cube",
        "a gray cylinder to the right of a green cube, and no red sphere",
    )
    torch.manual_seed(0)
    per_map = create_model("dcsm", BACKBONE, context_length=20)
    with_b, with_c = per_map.score(image, [a, b]), per_map.score(image, [a, c])
    torch.testing.assert_close(with_b[0, 0], with_c[0, 0], atol=1e-6, rtol=0)

    batch = create_model("dcsm", BACKBONE, context_length=20, normalize="batch")
    batch.load_state_dict(per_map.state_dict())
    with_b, with_c = batch.score(image, [a, b]), batch.score(image, [a, c])
    assert abs(float(with_b[0, 0] - with_c[0, 0])) > 1e-4


def test_checkpoint_reload_reproduces_scores_and_signatures(tmp_path, rows):
    torch.manual_seed(1)
    original = create_model("dcsm", BACKBONE, context_length=20, head="pooled", pool=[4, 4])
    with torch.no_grad():
        original.signatures.mul_(2.0)  # not what the seed gives: must come from the file
        for p in original.head.parameters():
            p.add_(0.01)
    save_checkpoint(original, tmp_path / "ckpt")
    reloaded = load_checkpoint(tmp_path / "ckpt")
    assert reloaded.config == original.config
    assert torch.equal(reloaded.signatures, original.signatures)
    images = images_of(rows, 2)
    texts = ["a red cube to the left of a blue sphere", "a blue sphere, and no red cube"]
    torch.testing.assert_close(
        reloaded.score(images, texts), original.score(images, texts), atol=0, rtol=0
    )


def test_batch_contrasts_positives_with_hard_negatives_and_training_lowers_the_loss(
    feature_rows,
):
    torch.manual_seed(0)
    model = create_model("dcsm", BACKBONE, context_length=20, dropout=0.0)
    batch = model.collate(feature_rows)
    B = len(feature_rows)
    assert batch["text_tokens"].shape[0] == 2 * B  # every row has one chosen negative
    num_images = batch["image_tokens"].shape[0]
    has_image = (batch["text_target"][B:] >= 0).sum()
    assert num_images == B + has_image  # counterfactual images only where the negative has one
    assert batch["image_target"][:B].tolist() == list(range(B))

    optimizer = torch.optim.Adam(model.head.parameters(), lr=1e-3)
    first = model.loss(batch)[0].item()
    for _ in range(30):
        optimizer.zero_grad()
        loss, _ = model.loss(batch)
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.7 * first
    assert all(p.grad is None for p in model.backbone.parameters())


def test_own_block_loss_scores_each_scene_only_against_its_own_candidates(feature_rows):
    """in_batch_negatives=False: the pair path equals the full matrix on the block, and a
    one-scene batch (where the block is the whole matrix) gives the reference loss exactly."""
    torch.manual_seed(0)
    full = create_model("dcsm", BACKBONE, context_length=20, dropout=0.0)
    block = create_model("dcsm", BACKBONE, context_length=20, dropout=0.0, in_batch_negatives=False)
    block.head.load_state_dict(full.head.state_dict())
    torch.manual_seed(1)
    batch = full.collate(feature_rows)
    own = batch["image_scene"][:, None] == batch["text_scene"][None, :]
    assert own.sum() < own.numel()  # other scenes' captions exist and are left out
    pairs = own.nonzero()
    with torch.no_grad():
        matrix = full.score_features(
            batch["image_tokens"], batch["text_tokens"], batch["functional"]
        )
        paired = block.score_pairs(
            batch["image_tokens"], batch["text_tokens"], batch["functional"], pairs
        )
    torch.testing.assert_close(paired, matrix[pairs[:, 0], pairs[:, 1]], atol=1e-5, rtol=0)
    # Same block scores, fewer terms in every softmax denominator: strictly lower.
    assert block.loss(batch)[0] < full.loss(batch)[0]
    for row in feature_rows[:3]:
        torch.manual_seed(2)
        one = full.collate([row])
        torch.testing.assert_close(block.loss(one)[0], full.loss(one)[0], atol=1e-5, rtol=0)


def test_an_empty_lexicon_means_no_functional_rows(rows):
    from components.models.dcsm.options import DcsmOptions

    captions = rows.column("caption").to_pylist()
    options = DcsmOptions(lexicon=[]).model_options()
    assert options["lexicon"] == []  # not silently the default
    empty = create_model("dcsm", BACKBONE, context_length=20, lexicon=options["lexicon"])
    default = create_model("dcsm", BACKBONE, context_length=20)
    assert empty.signatures.shape[0] == 0 and int(empty.functional(captions).count_nonzero()) == 0
    assert int(default.functional(captions).count_nonzero()) > 0  # "left"/"right"/"no" marked
    assert DcsmOptions().model_options()["lexicon"] is None  # unset = the default lexicon


def test_naive_mlp_head_scores_maps_without_convolutions(rows):
    torch.manual_seed(0)
    model = create_model("dcsm", BACKBONE, context_length=20, head="mlp").eval()
    assert not any(isinstance(m, torch.nn.Conv2d) for m in model.head.modules())
    captions = rows.column("caption").to_pylist()[:3]
    scores = model.score(images_of(rows, 2), captions)
    assert scores.shape == (2, 3) and torch.isfinite(scores).all()
    assert float(scores.std()) > 0
