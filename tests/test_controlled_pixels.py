"""Pixel scene side of the controlled models: the rendered atlas, the ViT encoder, training."""

from __future__ import annotations

import pytest
import torch

from components.data.controlled_world import TokenWorld
from components.data.worlds.clevr import ClevrWorld
from components.models.controlled.controlled import ControlledDualEncoder, ControlledModelConfig
from components.models.controlled.controlled_pixels import render_atlas, scene_codes
from components.training.controlled_trainer import ControlledTrainConfig, train_controlled

WORLD = TokenWorld(2, 3, 2)  # 3 colours x 3 shapes, 100 atlas rows
SIZE = 32
PIXELS = ControlledModelConfig(
    d_model=32,
    num_heads=2,
    num_layers=1,
    ffn_dim=64,
    d_out=16,
    scene_input="pixels",
    image_size=SIZE,
    patch_size=8,
)


@pytest.fixture(scope="module")
def atlas() -> torch.Tensor:
    return render_atlas(WORLD, SIZE)


def image(atlas: torch.Tensor, *objects: int) -> torch.Tensor:
    slots = list(objects) + [-1] * (WORLD.max_objects - len(objects))
    return atlas[scene_codes(WORLD, torch.tensor([slots]))[0]]


def test_every_object_renders_differently_in_the_first_slot(atlas):
    singles = torch.stack([image(atlas, o) for o in range(WORLD.num_objects)]).flatten(1)
    assert singles.shape == (9, 3 * (SIZE // 2) * SIZE)
    assert len(torch.unique(singles, dim=0)) == WORLD.num_objects


def test_slot_decides_position_so_order_matters(atlas):
    """Each slot owns its half of the band: swapping objects swaps halves, nothing else."""
    half = SIZE // 2
    red_cube_blue_sphere, blue_sphere_red_cube = image(atlas, 1, 5), image(atlas, 5, 1)
    assert not torch.equal(red_cube_blue_sphere, blue_sphere_red_cube)
    assert torch.equal(red_cube_blue_sphere[..., :half], image(atlas, 1, 7)[..., :half])
    assert torch.equal(red_cube_blue_sphere[..., half:], image(atlas, 8, 5)[..., half:])
    assert torch.equal(red_cube_blue_sphere[..., :half], image(atlas, 1)[..., :half])


def test_worlds_the_renderer_cannot_draw_are_rejected():
    with pytest.raises(ValueError, match="does not fit"):
        render_atlas(TokenWorld(3, 3, 2), SIZE)
    with pytest.raises(ValueError, match="does not fit"):
        render_atlas(TokenWorld(2, 7, 2), SIZE)
    with pytest.raises(ValueError, match="atlas rows"):
        render_atlas(TokenWorld(2, 6, 3), SIZE)
    with pytest.raises(ValueError, match="unknown shape values"):
        ClevrWorld({"name": "bad", "concepts": {"color": ["red"], "shape": ["blob"]}})


def test_checkpoint_holds_weights_not_images_and_reload_reproduces_scores():
    torch.manual_seed(0)
    model = ControlledDualEncoder(WORLD, PIXELS).eval()
    state = model.state_dict()
    assert not any("atlas" in key for key in state)
    reloaded = ControlledDualEncoder(WORLD, PIXELS).eval()
    reloaded.load_state_dict(state)
    scenes = torch.tensor([[1, 5], [5, 1], [4, -1]])
    queries = WORLD.object_queries(torch.arange(WORLD.num_objects))
    with torch.no_grad():
        scores = model.score(scenes, queries)
        assert torch.allclose(scores, reloaded.score(scenes, queries))
    assert not torch.allclose(scores[0], scores[1])  # the ViT sees where each object is


def test_pixel_model_learns_seen_objects_from_rendered_scenes():
    """100 steps reach about 8x chance on both tasks; the bars are 3x and 5x."""
    config = ControlledTrainConfig(
        steps=100, batch_size=32, lr=3e-3, eval_every=100, eval_scenes=128
    )
    result = train_controlled(WORLD, 1.0, PIXELS, config)
    final = result.history[-1]
    assert final["seen_concept_acc"] > 3 * final["seen_concept_chance"]
    assert final["seen_object_acc"] > 5 * final["seen_object_chance"]
