"""Every open_clip architecture gives image and text tokens of the right shape, or is refused.

Each model is built at a tiny size: open_clip towers through ``vision_cfg``/``text_cfg``
overrides, timm towers through a registered tiny variant of the same timm entrypoint (same
class, same pooling, a fraction of the width and depth). A refusal must be
``UnsupportedBackbone`` naming the model and what it lacks: never an AttributeError or a
NotImplementedError.
"""

from __future__ import annotations

import re

import open_clip
import pytest
import timm
import torch
from timm.models.vitamin import VitCfg, VitConvCfg

from components.models.backbone import build_backbone
from components.models.towers import UnsupportedBackbone

WIDTH = 64
TEXT = {"width": WIDTH, "heads": 2, "layers": 1}
# Tiny keyword arguments per timm family (the first prefix of the timm name that matches).
TIMM_TINY = {
    "eva": {"embed_dim": WIDTH, "depth": 1, "num_heads": 2},
    "vit_base_mci": {"depth": 1},  # its conv stem fixes the width
    "vitamin": {
        "embed_dim": WIDTH,
        "depth": 1,
        "num_heads": 2,
        "embed_cfg": VitCfg(
            embed_dim=(16, 32, WIDTH),
            depths=(1, 1, 1),
            stem_width=16,
            conv_cfg=VitConvCfg(norm_layer="layernorm2d", norm_eps=1e-6),
            head_type="1d",
        ),
    },
    "fastvit_mci3": {"layers": (1, 1, 1, 1, 1)},  # five stages
    "fastvit_mci4": {"layers": (1, 1, 1, 1, 1)},
    "convnext": {"depths": (1, 1, 1, 1), "dims": (16, 16, 32, WIDTH)},
    "swin": {"embed_dim": 16, "depths": (1, 1, 1, 1), "num_heads": (1, 1, 1, 2)},
    "fastvit": {"layers": (1, 1, 1, 1)},
    "vit_": {"embed_dim": WIDTH, "depth": 1, "num_heads": 2},
}
# Representatives of every tower family: the fast default; the full sweep is marked slow.
REPRESENTATIVES = [
    "ViT-B-16",
    "ViT-B-16-quickgelu",
    "RN50",
    "ViT-B-16-SigLIP",
    "EVA02-B-16",
    "convnext_base",
    "ViTamin-B",
    "MobileCLIP2-S0",
    "swin_base_patch4_window7_224",
    "coca_ViT-B-32",
    "roberta-ViT-B-32",
]
REFUSED = {"hf_model_name": "Hugging Face model", "multimodal_cfg": "class token (CoCa)"}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _tiny_timm(timm_name: str) -> str:
    """A registered tiny variant of a timm entrypoint (official timm registry API)."""
    tiny = f"bindkit_tiny_{timm_name}"
    if not timm.is_model(tiny):
        family = next(k for k in TIMM_TINY if timm_name.startswith(k))
        base = timm.models.model_entrypoint(timm_name)

        def entry(pretrained: bool = False, **kwargs):
            return base(pretrained=pretrained, **{**TIMM_TINY[family], **kwargs})

        entry.__name__ = tiny
        entry.__module__ = __name__
        timm.models.register_model(entry)
    return tiny


def tiny_overrides(name: str) -> dict:
    """Backbone overrides that shrink ``name`` while keeping its tower classes."""
    cfg = open_clip.get_model_config(name)
    vision = cfg["vision_cfg"]
    if "timm_model_name" in vision:
        vision_cfg = {"timm_model_name": _tiny_timm(vision["timm_model_name"])}
    elif isinstance(vision.get("layers"), (list, tuple)):  # ModifiedResNet
        vision_cfg = {"layers": [1, 1, 1, 1], "width": 16, "head_width": 16}
    else:
        vision_cfg = {"width": WIDTH, "layers": 1, "head_width": 32}
    overrides = {"embed_dim": WIDTH, "vision_cfg": vision_cfg, "text_cfg": dict(TEXT)}
    if "hf_tokenizer_name" in cfg["text_cfg"]:
        # Its tokenizer lives on the hub (no downloads in tests): CLIP's BPE over CLIP's vocab.
        overrides["tokenizer"] = "ViT-B-16"
        overrides["text_cfg"]["vocab_size"] = 49408
    return overrides


def expected_refusal(name: str) -> str | None:
    cfg = open_clip.get_model_config(name)
    if "hf_model_name" in cfg.get("text_cfg", {}):
        return REFUSED["hf_model_name"]
    if "multimodal_cfg" in cfg:
        return REFUSED["multimodal_cfg"]
    return None


def check_tokens(name: str) -> None:
    refusal = expected_refusal(name)
    if refusal:
        with pytest.raises(UnsupportedBackbone, match=rf"{re.escape(name)}.*{re.escape(refusal)}"):
            build_backbone(name, **tiny_overrides(name))
        return
    torch.manual_seed(0)
    backbone = build_backbone(name, **tiny_overrides(name)).eval()
    size = backbone.image_size
    images = torch.randn(2, 3, size, size)
    ids = backbone.tokenize(["a red cube", "two blue spheres left of a cone"])
    with torch.no_grad():
        pooled, tokens = backbone.image_tokens(images)
        text_pooled, words, mask = backbone.text_tokens(ids)
        encoded = backbone.encode_image(images)
    D = backbone.embed_dim
    assert pooled.shape == (2, D) and tokens.ndim == 3 and tokens.shape[0] == 2
    assert tokens.shape[1] > backbone.num_prefix_tokens and tokens.shape[2] == D
    torch.testing.assert_close(pooled, encoded, rtol=0, atol=1e-5)
    assert text_pooled.shape == (2, D) and words.shape == (2, ids.shape[1], D)
    assert mask.shape == ids.shape and torch.isfinite(tokens).all()


@pytest.mark.parametrize("name", REPRESENTATIVES)
def test_representative_architecture_gives_tokens_or_a_clear_refusal(name):
    check_tokens(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in open_clip.list_models() if n not in REPRESENTATIVES])
def test_every_open_clip_architecture_gives_tokens_or_a_clear_refusal(name):
    check_tokens(name)
