"""CLIP baseline scores and loss; checkpoints rebuild CLIP and OC-CLIP exactly."""

from __future__ import annotations

import io
import json

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from components.models.backbone import build_backbone
from components.models.checkpoint import load_checkpoint, save_checkpoint
from components.models.clip import CLIP, graph_caption
from components.models.registry import create_model
from components.parsing.scene_graph import SceneGraph

TWO_LAYERS = {"vision_cfg": {"layers": 2}, "text_cfg": {"layers": 2}}
CAPTIONS = ["a red cube left of a blue sphere", "a green cube", "a blue sphere"]
GRAPHS = [
    SceneGraph.build([("cube", ["red"]), ("sphere", ["blue"])], [(0, "left of", 1)]),
    SceneGraph.build([("cube", ["green"])]),
    SceneGraph.build([("sphere", ["blue"]), ("cone", [], True)]),
]
IMAGES = [Image.new("RGB", (64, 64), c) for c in ("red", "green", "blue")]


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def rows() -> list[dict]:
    return [
        {"image": png(im), "caption": c, "graph": g.to_dict()}
        for im, c, g in zip(IMAGES, CAPTIONS, GRAPHS, strict=True)
    ]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def clip() -> CLIP:
    torch.manual_seed(0)
    return create_model("clip", build_backbone("tiny", **TWO_LAYERS)).eval()


def test_clip_score_is_the_cosine_of_pooled_embeddings(clip):
    scores = clip.score(IMAGES, CAPTIONS)
    with torch.no_grad():
        image = clip.backbone.encode_image(
            torch.stack([clip.backbone.preprocess(i) for i in IMAGES])
        )
        text = clip.backbone.encode_text(clip.backbone.tokenize(CAPTIONS))
    expected = F.normalize(image, dim=-1) @ F.normalize(text, dim=-1).T
    assert scores.shape == (3, 3)
    torch.testing.assert_close(scores, expected, atol=1e-6, rtol=0)


def test_clip_reads_a_scene_graph_back_as_a_caption(clip):
    assert graph_caption(GRAPHS[0]) == "red cube left of blue sphere"
    assert graph_caption(GRAPHS[2]) == "blue sphere and no cone"
    torch.testing.assert_close(
        clip.score(IMAGES[:1], [GRAPHS[0]]),
        clip.score(IMAGES[:1], ["red cube left of blue sphere"]),
    )


def test_clip_loss_is_symmetric_infonce_over_scaled_cosines(clip):
    batch = clip.collate(rows())
    with torch.no_grad():
        loss, parts = clip.loss(batch)
        image = F.normalize(clip.backbone.encode_image(batch["images"]), dim=-1)
        text = F.normalize(clip.backbone.encode_text(batch["text_tokens"]), dim=-1)
    logits = clip.logit_scale.exp().clamp(max=100) * image @ text.T
    target = torch.arange(3)
    expected = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    assert loss.item() == pytest.approx(expected.item(), abs=1e-5)
    assert parts["logit_scale"] == pytest.approx(1 / 0.07, rel=1e-5)


def test_clip_param_groups_put_the_temperature_with_the_heads(clip):
    groups = {g["name"]: g for g in clip.param_groups(1e-5, 1e-3, 0.1)}
    head = [
        p
        for name in ("head_decay", "head_no_decay")
        if name in groups
        for p in groups[name]["params"]
    ]
    assert [id(p) for p in head] == [id(clip.logit_scale)]
    assert groups["head_no_decay"]["lr"] == 1e-3 and groups["head_no_decay"]["weight_decay"] == 0


def test_unknown_model_name_is_an_error_listing_known_ones():
    with pytest.raises(ValueError, match="occlip"):
        create_model("nope", {"name": "tiny"})


@pytest.mark.parametrize("name", ["clip", "occlip"])
def test_checkpoint_round_trip_reproduces_scores_exactly(name, tmp_path):
    torch.manual_seed(0)
    options = {"depth": 1, "num_default_tokens": 2, "d_obj": 32} if name == "occlip" else {}
    model = create_model(name, build_backbone("tiny", **TWO_LAYERS), **options).eval()
    with torch.no_grad():  # move every parameter off its init so a missed tensor would show
        for param in model.parameters():
            param.add_(0.01 * torch.randn_like(param))
    texts = GRAPHS
    before = model.score(IMAGES, texts)
    directory = save_checkpoint(model, tmp_path / "ckpt", extra={"step": 12})
    config = json.loads((directory / "config.json").read_text())
    assert config["name"] == name and config["extra"] == {"step": 12}
    assert config["config"]["backbone"]["name"] == "tiny"
    reloaded = load_checkpoint(directory).eval()
    assert type(reloaded) is type(model) and reloaded.config == model.config
    torch.testing.assert_close(reloaded.score(IMAGES, texts), before, rtol=0, atol=0)
