"""The pixel scene encoder of the controlled models: a small timm ViT on rendered clevr scenes.

The paper's controlled models read token scenes; its claim is about vision encoders, so the
same coverage experiment with pixels on the scene side is the check that matters. Rendering
per training step would cost about an hour per trial on a CPU, but a world with M objects
has only sum_m |O|^m ordered scenes (1,332 for C2V6 at M=2). So every scene is rendered once
into an atlas, and a batch of object tuples becomes a gather. Objects sit at fixed slots
(slot k at x = (k+1)/(M+1), as in the paper's "posfix" CLEVR), so object order maps to
position the way token order maps to positional encodings on the token side.
"""

from __future__ import annotations

import numpy as np
import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from components.data.controlled_world import TokenWorld
from components.data.worlds.base import PlacedObject, Scene
from components.data.worlds.clevr import CLEVR_RGB, SHAPES, ClevrWorld

PIXEL_CONCEPTS = ("color", "shape")  # token concept c is drawn as this clevr attribute
MAX_ATLAS_SCENES = 20_000  # about 2 min of rendering and 60 MB at 32 px


def pixel_world(world: TokenWorld) -> ClevrWorld:
    """The clevr world that draws a token world: concept 0 as colour, concept 1 as shape.

    Raises on a world the renderer cannot draw, or whose atlas would be too large; sweeps
    call it before starting Ray.
    """
    available = {"color": tuple(CLEVR_RGB), "shape": SHAPES}
    if world.num_concepts > len(PIXEL_CONCEPTS) or any(
        world.num_values > len(available[name]) for name in PIXEL_CONCEPTS[: world.num_concepts]
    ):
        raise ValueError(
            f"pixel scenes draw concept 0 as colour (<= {len(CLEVR_RGB)} values) and concept 1 "
            f"as shape (<= {len(SHAPES)} values); world {world.name} does not fit"
        )
    rows = (world.num_objects + 1) ** world.max_objects
    if rows > MAX_ATLAS_SCENES:
        raise ValueError(
            f"world {world.name} with M={world.max_objects} has {rows} atlas rows "
            f"(> {MAX_ATLAS_SCENES}); pixel scenes need a smaller world or fewer objects"
        )
    concepts = {
        name: list(available[name][: world.num_values])
        for name in PIXEL_CONCEPTS[: world.num_concepts]
    }
    return ClevrWorld(
        {"name": f"pixels-{world.name}", "kind": "clevr", "concepts": concepts, "max_occlusion": 1}
    )


def scene_codes(world: TokenWorld, objects: torch.Tensor) -> torch.Tensor:
    """Atlas row of each scene: (B, M) object ids, -1 = absent -> (B,), mixed radix |O|+1."""
    radix = (world.num_objects + 1) ** torch.arange(
        world.max_objects - 1, -1, -1, device=objects.device
    )  # (M,)
    return ((objects + 1) * radix).sum(-1)


def render_atlas(world: TokenWorld, image_size: int) -> torch.Tensor:
    """Every left-aligned scene of 1..M objects, rendered: (|O|+1)^M x 3 x S/2 x S uint8.

    Only the middle half of the rows is kept: the fixed slots put every object there, and
    half the patches halve the ViT's cost. Rows of codes that are not left-aligned scenes
    stay black and are never read.
    """
    clevr = pixel_world(world)
    atlas = np.zeros(
        ((world.num_objects + 1) ** world.max_objects, image_size, image_size, 3), dtype=np.uint8
    )
    ids = torch.arange(world.num_objects)
    for count in range(1, world.max_objects + 1):
        tuples = torch.cartesian_prod(*[ids] * count).reshape(-1, count)  # (|O|^m, m)
        padded = torch.full((len(tuples), world.max_objects), -1)
        padded[:, :count] = tuples
        for code, scene in zip(scene_codes(world, padded).tolist(), tuples.tolist(), strict=True):
            placed = tuple(
                PlacedObject(
                    obj, clevr.values_of(obj), ((slot + 1) / (world.max_objects + 1), 0.5), 0.0
                )
                for slot, obj in enumerate(scene)
            )
            atlas[code] = clevr.render(Scene(placed), image_size)[0]
    band = atlas[:, image_size // 4 : image_size // 4 + image_size // 2]
    return torch.from_numpy(band).permute(0, 3, 1, 2).contiguous()


class PixelSceneEncoder(nn.Module):
    """timm ViT over atlas images; the class token, normed and projected, is the embedding."""

    def __init__(
        self,
        world: TokenWorld,
        d_model: int,
        num_heads: int,
        num_layers: int,
        ffn_dim: int,
        d_out: int,
        image_size: int,
        patch_size: int,
    ) -> None:
        super().__init__()
        self.world = world
        # Rebuilt from the world on load (deterministic), so checkpoints stay small.
        self.register_buffer("atlas", render_atlas(world, image_size), persistent=False)
        self.vit = VisionTransformer(
            img_size=(image_size // 2, image_size),
            patch_size=patch_size,
            num_classes=d_out,
            embed_dim=d_model,
            depth=num_layers,
            num_heads=num_heads,
            mlp_ratio=ffn_dim / d_model,
            global_pool="token",
        )

    def forward(self, objects: torch.Tensor) -> torch.Tensor:
        """(B, M) object ids, -1 = absent -> (B, d_out)."""
        images = self.atlas[scene_codes(self.world, objects.to(self.atlas.device))]
        return self.vit(images.float() / 127.5 - 1.0)
