"""The binding-function analysis (additive Level I/II, targeted removal, approximator
complexity; arXiv 2605.31503) asked of any image backbone, not only controlled models.

Every ordered two-object scene of a world is rendered with a fixed layout (slot 1 on the
left, slot 2 on the right, same depth), so the only thing that varies between images is
which objects fill the slots; the backbone's pooled image embedding of each is then the
binding function f(o_1, o_2). The approximators are fitted on scenes of seen objects and
scored through probes on scenes of held-out objects (``complexity_sweep``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image

from components.data.worlds.base import PlacedObject, Scene, World
from components.probes.additive import additive_decomposition, targeted_removal
from components.probes.complexity import ComplexityConfig, complexity_sweep

SLOT_CENTERS = ((0.3, 0.5), (0.7, 0.5))
SLOT_DEPTH = 0.3


def pair_scene(world: World, first: int, second: int) -> Scene:
    """Objects ``first`` (left) and ``second`` (right) at the fixed slot positions (the
    renderer computes each box from its position, depth and size)."""
    return Scene(
        tuple(
            PlacedObject(index, world.values_of(index), center, SLOT_DEPTH)
            for index, center in zip((first, second), SLOT_CENTERS, strict=True)
        )
    )


@torch.no_grad()
def pair_embeddings(
    backbone, world: World, pairs: np.ndarray, image_size: int, batch_size: int = 64
) -> np.ndarray:
    """(N, D) pooled image embeddings of the rendered ordered pairs (N, 2)."""
    backbone.eval()
    out = []
    for start in range(0, len(pairs), batch_size):
        images = []
        for first, second in pairs[start : start + batch_size]:
            image, _, _ = world.render(pair_scene(world, int(first), int(second)), image_size)
            images.append(backbone.preprocess(Image.fromarray(image).convert("RGB")))
        out.append(backbone.encode_image(torch.stack(images)).float().cpu())
    return torch.cat(out).numpy()


def backbone_binding_function(
    backbone,
    world: World,
    *,
    image_size: int = 64,
    seen_fraction: float = 0.7,
    config: ComplexityConfig | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Level I/II R^2, targeted removal and the complexity sweep of one backbone's f.

    Seen objects are a seeded ``seen_fraction`` of the world's objects; scenes of two
    distinct objects only (a repeated object is not a two-object scene).
    """
    config = config or ComplexityConfig()
    num_objects = world.space.num_objects
    pairs = np.array([(a, b) for a in range(num_objects) for b in range(num_objects) if a != b])
    embeddings = pair_embeddings(backbone, world, pairs, image_size)
    sizes = list(world.space.sizes)
    seen = np.random.default_rng(seed).permutation(num_objects)[: int(seen_fraction * num_objects)]
    return {
        "num_scenes": len(pairs),
        "seen_objects": sorted(int(o) for o in seen),
        **additive_decomposition(embeddings, pairs, sizes),
        "targeted_removal": targeted_removal(
            embeddings, pairs, sizes, probe_epochs=config.probe_epochs, seed=seed
        ),
        "complexity": complexity_sweep(embeddings, pairs, sizes, seen, config),
    }
