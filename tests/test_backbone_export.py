"""A trained backbone goes back to plain open_clip with identical embeddings; heads beside it."""

from __future__ import annotations

import json

import open_clip
import pytest
import torch
from PIL import Image

from components.models.backbone import build_backbone
from components.models.export import export_model, load_export
from components.models.registry import create_model
from components.parsing.scene_graph import SceneGraph

TWO_LAYERS = {"vision_cfg": {"layers": 2}, "text_cfg": {"layers": 2}}
IMAGES = [Image.new("RGB", (64, 64), c) for c in ("red", "green")]
GRAPHS = [
    SceneGraph.build([("cube", ["red"]), ("sphere", ["blue"])], [(0, "left of", 1)]),
    SceneGraph.build([("cube", ["green"])]),
]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An OC-CLIP model with every weight moved off its init (as training would)."""
    torch.manual_seed(0)
    backbone = build_backbone("tiny", force_quick_gelu=True, **TWO_LAYERS)
    model = create_model("occlip", backbone, depth=1, num_default_tokens=2, d_obj=32).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.01 * torch.randn_like(param))
    return model, export_model(model, tmp_path_factory.mktemp("export"))


def _embeddings(model, backbone):
    pixels = torch.stack([backbone.preprocess(i) for i in IMAGES])
    ids = backbone.tokenize(["a red cube", "a green sphere"])
    with torch.no_grad():
        return model.encode_image(pixels), model.encode_text(ids)


def test_exported_backbone_reloads_in_plain_open_clip_with_identical_embeddings(trained):
    model, directory = trained
    expected = _embeddings(model.backbone.model, model.backbone)
    reloaded = open_clip.create_model(f"local-dir:{directory}").eval()
    for got, want in zip(_embeddings(reloaded, model.backbone), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    # A stock name with the same architecture loads the file through pretrained= too.
    cfg = json.loads((directory / "open_clip_config.json").read_text())["model_cfg"]
    assert cfg["quick_gelu"] is True and cfg["vision_cfg"]["layers"] == 2
    stock = open_clip.create_model(
        "ViT-B-16", pretrained=str(directory / "open_clip_model.safetensors"), **cfg
    ).eval()
    for got, want in zip(_embeddings(stock, model.backbone), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_exported_heads_rebuild_the_model_with_identical_scores(trained):
    model, directory = trained
    config = json.loads((directory / "heads_config.json").read_text())
    assert config["name"] == "occlip" and config["config"]["depth"] == 1
    reloaded = load_export(directory).eval()
    torch.testing.assert_close(
        reloaded.score(IMAGES, GRAPHS), model.score(IMAGES, GRAPHS), rtol=0, atol=0
    )
