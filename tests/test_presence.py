"""The presence classifier: object targets need binding, feature targets do not, and its
checkpoints are backbones probe_binding can load."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from components.data.worlds import get_world
from components.models.presence import TARGET_COLUMNS, presence_targets
from components.models.registry import create_model
from components.platform.config import ConfigError, load_config

IMAGE_SIZE = 32  # not the tiny ViT's own 64: checkpoints must carry it


def _rows(world, scenes: list[list[tuple[str, str]]]) -> list[dict]:
    """Shard-like rows (codes as the builder writes them) for scenes of (colour, shape)."""
    space = world.space
    rows = []
    for objects in scenes:
        indices = [space.index_of_values(values) for values in objects]
        rows.append(
            {
                "object_code": space.object_code(indices).tolist(),
                "feature_code": space.feature_code(indices).tolist(),
            }
        )
    return rows


def test_object_targets_separate_swapped_bindings_that_feature_targets_cannot():
    world = get_world("colorshape")
    rows = _rows(
        world,
        [
            [("red", "circle"), ("blue", "square")],
            [("red", "square"), ("blue", "circle")],  # same colours and shapes, rebound
        ],
    )
    objects = presence_targets(rows, TARGET_COLUMNS["objects"])
    features = presence_targets(rows, TARGET_COLUMNS["features"])
    assert objects.shape == (2, 64) and features.shape == (2, 16)
    assert objects.sum(1).tolist() == [2.0, 2.0]
    assert not torch.equal(objects[0], objects[1])
    assert torch.equal(features[0], features[1])


def test_a_row_without_its_code_is_refused_by_name():
    with pytest.raises(ValueError, match="row 0 .* has no object_code"):
        presence_targets([{"id": "s0", "feature_code": [1, 0]}], "object_code")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    backbone = {"name": "tiny", "image_size": IMAGE_SIZE}
    return create_model("presence", backbone, target="features", num_labels=16)


def test_loss_is_mean_bce_of_the_heads_logits_and_only_the_image_tower_trains(model):
    images = torch.randn(4, 3, IMAGE_SIZE, IMAGE_SIZE)
    targets = (torch.rand(4, 16) < 0.5).float()
    loss, parts = model.loss({"images": images, "targets": targets})
    expected = F.binary_cross_entropy_with_logits(model.logits(images), targets)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert 0.0 <= parts["exact_accuracy"] <= parts["label_accuracy"] <= 1.0
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trained and all(n.startswith(("backbone.model.visual.", "head.")) for n in trained)
    with pytest.raises(ValueError, match="feature_code has 5 labels, the head 16"):
        model.loss({"images": images, "targets": targets[:, :5]})


def test_a_trained_checkpoint_loads_in_probe_bindings_backbone_loader(model, tmp_path):
    """The training loop's checkpoint (save_train_state) is a backbone for the probes."""
    from components.models.loading import load_backbone
    from components.training.optim import build_optimizer, warmup_cosine
    from components.training.state import save_train_state

    optimizer = build_optimizer(model, 1e-2, 1e-2, 0.0)
    before = model.backbone.model.visual.conv1.weight.detach().clone()
    batch = {"images": torch.randn(4, 3, IMAGE_SIZE, IMAGE_SIZE), "targets": torch.ones(4, 16)}
    model.loss(batch)[0].backward()
    optimizer.step()
    save_train_state(tmp_path, model, optimizer, warmup_cosine(optimizer, 0, 1), step=1)

    backbone = load_backbone({"checkpoint": str(tmp_path)}).eval()
    assert backbone.image_size == IMAGE_SIZE
    loaded = backbone.model.visual.conv1.weight
    assert torch.equal(loaded, model.backbone.model.visual.conv1.weight)
    assert not torch.equal(loaded, before)  # the trained weights, not a fresh init
    images = torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(
            backbone.encode_image(images), model.backbone.encode_image(images), atol=1e-6
        )


def test_train_presence_refuses_unknown_targets_before_work():
    from pipelines.train_presence import TrainPresenceConfig

    with pytest.raises(ConfigError, match="targets"):
        load_config(TrainPresenceConfig, ["targets=[colours]"])
