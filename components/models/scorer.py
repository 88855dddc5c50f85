"""The Scorer contract: every model bindkit trains or evaluates is scored the same way.

Evaluation and Tune call ``score`` and never special-case a model: CLIP ranks by pooled
cosine, OC-CLIP parses each text into a SceneGraph and runs its structured score, DCSM runs
its CNN over dense similarity maps. A text is a caption or an already-parsed SceneGraph.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch
from PIL import Image

from components.parsing.scene_graph import SceneGraph

Text = str | SceneGraph


@runtime_checkable
class Scorer(Protocol):
    """score(images, texts) -> (n_images, n_texts) similarity; higher means a better match."""

    name: str

    def score(self, images: Sequence[Image.Image], texts: Sequence[Text]) -> torch.Tensor: ...
