"""Own weights: pretrained= alone loads a file, QuickGELU can be forced, towers can be locked."""

from __future__ import annotations

import io

import open_clip
import pytest
import torch
from PIL import Image

from components.models.backbone import BackboneConfig, build_backbone
from components.models.pretrained import PretrainedError
from components.models.registry import create_model
from components.parsing.scene_graph import SceneGraph
from components.training.optim import build_optimizer

# Tiny overrides of a stock open_clip name (the same shape as the "tiny" small config).
TINY = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 64, "layers": 2, "head_width": 32},
    "text_cfg": {"context_length": 16, "width": 64, "heads": 2, "layers": 2},
}
OCCLIP_OPTIONS = {"depth": 1, "num_default_tokens": 2, "d_obj": 32}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def png(color: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), color).save(buffer, format="PNG")
    return buffer.getvalue()


ROWS = [
    {
        "image": png(color),
        "caption": f"a {color} cube left of a sphere",
        "graph": SceneGraph.build(
            [("cube", [color]), ("sphere", [])], [(0, "left of", 1)]
        ).to_dict(),
    }
    for color in ("red", "green", "blue", "yellow")
]


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory) -> tuple[str, dict[str, torch.Tensor]]:
    """A random-init tiny ViT-B-16 saved as a plain open_clip state dict (.bin)."""
    torch.manual_seed(1)
    model = open_clip.create_model("ViT-B-16", **TINY)
    path = tmp_path_factory.mktemp("weights") / "model.bin"
    state = model.state_dict()
    torch.save(state, path)
    return str(path), state


def test_pretrained_file_alone_loads_its_weights(weights_file):
    path, state = weights_file
    torch.manual_seed(2)  # a different init, which the file must replace
    backbone = BackboneConfig(name="ViT-B-16", pretrained=path)
    built = build_backbone(**backbone.spec(), **TINY)
    for key in ("visual.conv1.weight", "token_embedding.weight", "logit_scale"):
        assert torch.equal(built.model.state_dict()[key], state[key]), key


def test_open_clip_train_checkpoint_with_module_prefix_loads(weights_file, tmp_path):
    """epoch_N.pt of open_clip_train: {'epoch', 'state_dict' with 'module.' keys, 'optimizer'}."""
    _, state = weights_file
    path = tmp_path / "epoch_3.pt"
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))])
    payload = {
        "epoch": 3,
        "name": "run",
        "state_dict": {f"module.{k}": v for k, v in state.items()},
        "optimizer": optimizer.state_dict(),
    }
    torch.save(payload, path)
    built = build_backbone("ViT-B-16", pretrained=str(path), **TINY)
    assert torch.equal(built.model.visual.conv1.weight, state["visual.conv1.weight"])


def test_weights_of_another_architecture_are_refused_naming_the_file(weights_file):
    path, _ = weights_file
    with pytest.raises(PretrainedError, match=r"model\.bin: cannot load into backbone"):
        build_backbone("ViT-B-16", pretrained=path, **{**TINY, "embed_dim": 32})


def test_unknown_tag_is_refused_listing_the_known_ones():
    with pytest.raises(PretrainedError, match=r"neither a file nor an open_clip tag.*openai"):
        build_backbone("ViT-B-16", pretrained="no-such-tag")


def test_tag_that_would_download_is_refused_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PretrainedError, match=r"'openai'.*downloads are off.*local weights file"):
        build_backbone("ViT-B-32", pretrained="openai")
    with pytest.raises(PretrainedError, match=r"hf-hub:.*downloads are off"):
        build_backbone("hf-hub:nobody/no-such-repo")


def test_schema_name_with_a_pretrained_value_is_refused():
    with pytest.raises(PretrainedError, match="leave pretrained empty"):
        build_backbone("local-dir:/nowhere", pretrained="openai")


def test_force_quick_gelu_changes_outputs_and_matches_the_quickgelu_config(weights_file):
    path, _ = weights_file
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    forced = build_backbone("ViT-B-16", pretrained=path, force_quick_gelu=True, **TINY).eval()
    named = build_backbone("ViT-B-16-quickgelu", pretrained=path, **TINY).eval()
    plain = build_backbone("ViT-B-16", pretrained=path, **TINY).eval()
    ids = forced.tokenize(["a red cube"])
    with torch.no_grad():
        torch.testing.assert_close(
            forced.encode_image(images), named.encode_image(images), rtol=0, atol=0
        )
        torch.testing.assert_close(forced.encode_text(ids), named.encode_text(ids), rtol=0, atol=0)
        assert not torch.allclose(forced.encode_image(images), plain.encode_image(images))
    rebuilt = type(forced).from_config(forced.config)  # the option survives a checkpoint
    assert rebuilt.config["force_quick_gelu"] is True


def _train(model, steps: int = 3) -> None:
    optimizer = build_optimizer(model, backbone_lr=1e-3, head_lr=1e-2, weight_decay=0.1)
    model.train()
    batch = model.collate(ROWS)
    for _ in range(steps):
        loss, _ = model.loss(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def test_lock_image_keeps_every_image_tensor_identical_while_the_binding_module_learns(
    weights_file,
):
    path, state = weights_file
    spec = BackboneConfig(name="ViT-B-16", pretrained=path, lock_image=True).spec()
    torch.manual_seed(0)
    model = create_model("occlip", {**spec, **TINY}, **OCCLIP_OPTIONS)
    binding_before = {k: v.clone() for k, v in model.binding.state_dict().items()}
    text_before = model.backbone.model.token_embedding.weight.detach().clone()
    _train(model)
    visual = {f"visual.{k}": v for k, v in model.backbone.model.visual.state_dict().items()}
    assert len(visual) > 10
    for key, tensor in visual.items():
        assert torch.equal(tensor, state[key]), f"{key} changed under lock_image"
    changed = [
        k for k, v in model.binding.state_dict().items() if not torch.equal(v, binding_before[k])
    ]
    assert changed, "the binding module did not train"
    assert not torch.equal(model.backbone.model.token_embedding.weight, text_before)


def test_lock_text_with_unlocked_layers_trains_only_the_last_groups(weights_file):
    """open_clip's groups from the end: projection, then last block + ln_final, then blocks."""
    path, _ = weights_file
    backbone = build_backbone(
        "ViT-B-16", pretrained=path, lock_text=True, lock_text_unlocked_layers=2, **TINY
    )
    blocks = backbone.model.transformer.resblocks
    assert not any(p.requires_grad for p in blocks[0].parameters())
    assert all(p.requires_grad for p in blocks[1].parameters())
    assert backbone.model.text_projection.requires_grad
    assert not backbone.model.token_embedding.weight.requires_grad
    assert all(p.requires_grad for p in backbone.model.visual.parameters())


def test_backbone_config_spec_leaves_defaults_out():
    assert BackboneConfig().spec() == {"name": "tiny", "pretrained": None}
    spec = BackboneConfig(
        name="RN50", pretrained="f.pt", force_quick_gelu=True, lock_image=True
    ).spec()
    assert spec == {
        "name": "RN50",
        "pretrained": "f.pt",
        "force_quick_gelu": True,
        "lock_image": True,
    }


def test_train_occlip_passes_pretrained_alone_to_the_model_and_has_no_init_key(weights_file):
    from components.platform.config import ConfigError, load_config
    from pipelines.train_occlip import TrainOcclipConfig, model_spec

    path, _ = weights_file
    config = load_config(
        TrainOcclipConfig, [f"backbone.pretrained={path}", "backbone.lock_image=true"]
    )
    spec = model_spec(config, "occlip")["backbone"]
    assert spec == {"name": "tiny", "pretrained": path, "lock_image": True}
    with pytest.raises(ConfigError, match="init"):
        load_config(TrainOcclipConfig, ["init=pretrained"])
