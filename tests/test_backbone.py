"""Backbone: token access agrees with open_clip's pooled outputs, at any text length."""

from __future__ import annotations

import pytest
import torch

from components.models.backbone import Backbone, build_backbone

CAPTIONS = ["a red cube left of a blue sphere", "a green cylinder", "two small yellow cubes"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def backbone() -> Backbone:
    torch.manual_seed(0)
    return build_backbone("tiny").eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def test_tiny_config_has_the_registered_shape(backbone):
    assert (backbone.embed_dim, backbone.width, backbone.context_length) == (128, 128, 32)
    assert backbone.image_size == 64
    assert len(backbone.model.visual.transformer.resblocks) == 4


def test_projected_cls_token_is_the_pooled_image_embedding(backbone, images):
    with torch.no_grad():
        pooled, tokens = backbone.image_tokens(images)
        reference = backbone.model.encode_image(images)
    assert tokens.shape == (3, 1 + (64 // 8) ** 2, 128)
    torch.testing.assert_close(pooled, reference, rtol=0, atol=0)
    torch.testing.assert_close(tokens[:, 0], reference, rtol=0, atol=1e-5)


def test_projected_eot_token_is_the_pooled_text_embedding(backbone):
    ids = backbone.tokenize(CAPTIONS)
    with torch.no_grad():
        pooled, tokens, mask = backbone.text_tokens(ids)
        reference = backbone.model.encode_text(ids)
    torch.testing.assert_close(backbone.encode_text(ids), reference, rtol=0, atol=0)
    torch.testing.assert_close(pooled, reference, rtol=0, atol=0)
    eot = ids.argmax(-1)
    torch.testing.assert_close(tokens[torch.arange(3), eot], reference, rtol=0, atol=1e-5)
    assert mask.sum(-1).tolist() == (eot + 1).tolist()


def test_dense_config_pools_the_mean_of_its_projected_tokens(images):
    """tiny-dense: the cosine a CLIP loss trains is the mean of every word and every patch."""
    torch.manual_seed(0)
    dense = build_backbone("tiny-dense").eval()
    ids = dense.tokenize(CAPTIONS)
    with torch.no_grad():
        text, words, mask = dense.text_tokens(ids)
        image, patches = dense.image_tokens(images)
        encoded = dense.encode_image(images)
    eot = ids.argmax(-1)
    for b in range(len(CAPTIONS)):
        torch.testing.assert_close(text[b], words[b, 1 : eot[b] + 1].mean(0), atol=1e-5, rtol=0)
    torch.testing.assert_close(image, patches[:, 1:].mean(1), atol=1e-5, rtol=0)
    torch.testing.assert_close(encoded, image, atol=0, rtol=0)
    rebuilt = Backbone.from_config(dense.config, load_pretrained=False)
    assert rebuilt.text_pool == "mean" and rebuilt.model.visual.pool_type == "avg"
    with pytest.raises(ValueError, match="text_pool"):
        build_backbone("tiny", text_pool="max")


def test_short_context_gives_the_same_embedding_as_the_full_context(backbone):
    """Causal mask: positions < L never see later ones, so truncating the padding is exact."""
    with torch.no_grad():
        short = backbone.encode_text(backbone.tokenize(CAPTIONS, context_length=12))
        full = backbone.model.encode_text(backbone.tokenize(CAPTIONS))
    assert backbone.tokenize(CAPTIONS, context_length=12).shape == (3, 12)
    torch.testing.assert_close(short, full, rtol=0, atol=1e-5)


def test_tokenize_rejects_a_context_longer_than_the_tower(backbone):
    with pytest.raises(ValueError, match="exceeds"):
        backbone.tokenize(CAPTIONS, context_length=64)


def test_intermediate_layer_returns_that_blocks_projected_tokens(backbone, images):
    with torch.no_grad():
        pooled, tokens = backbone.image_tokens(images, layer=1)
        _, last = backbone.image_tokens(images)
        _, text_tokens, _ = backbone.text_tokens(backbone.tokenize(CAPTIONS), layer=1)
    assert tokens.shape == last.shape and text_tokens.shape == (3, 32, 128)
    torch.testing.assert_close(pooled, tokens[:, 0])
    assert not torch.allclose(tokens, last)


def test_from_config_rebuilds_an_identical_architecture(backbone, images):
    rebuilt = Backbone.from_config(backbone.config, load_pretrained=False).eval()
    rebuilt.load_state_dict(backbone.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.encode_image(images), backbone.encode_image(images))
    assert rebuilt.preprocess_cfg == backbone.preprocess_cfg


def test_overrides_change_one_field_of_a_small_config():
    shallow = build_backbone("tiny", vision_cfg={"layers": 1}, text_cfg={"layers": 1})
    assert len(shallow.model.visual.transformer.resblocks) == 1
    assert shallow.model.visual.transformer.width == 128  # untouched fields kept
    assert shallow.config["vision_cfg"] == {"layers": 1}
