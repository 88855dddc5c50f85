"""pipelines/binding_function.py: the analysis of the backbone backbone.checkpoint= names."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from components.platform.config import ConfigError, load_config
from pipelines.binding_function import BindingFunctionConfig, main


def test_seen_fraction_outside_zero_one_is_refused_before_work():
    with pytest.raises(ConfigError, match="seen_fraction"):
        load_config(BindingFunctionConfig, ["seen_fraction=1.0"])


def test_the_checkpoints_backbone_is_the_one_analysed(tmp_path, mlflow_uri, one_torch_thread):
    """Level I/II R^2 in results.json are those of the checkpoint's own backbone."""
    from components.data.worlds import get_world
    from components.models.checkpoint import save_checkpoint
    from components.models.registry import create_model
    from components.probes.additive import additive_decomposition
    from components.probes.backbone_binding import pair_embeddings

    torch.manual_seed(1)
    model = create_model("clip", {"name": "tiny"})
    checkpoint = save_checkpoint(model, tmp_path / "clip")
    out = tmp_path / "out"
    main(
        [
            f"backbone.checkpoint={checkpoint}",
            "image_size=16",
            "complexity.families=[additive]",
            "complexity.epochs=5",
            "complexity.probe_epochs=5",
            f"out={out}",
        ]
    )
    results = json.loads((out / "results.json").read_text())
    world = get_world("clevr_pairs")
    pairs = np.array([(a, b) for a in range(24) for b in range(24) if a != b])
    expected = additive_decomposition(
        pair_embeddings(model.backbone, world, pairs, 16), pairs, list(world.space.sizes)
    )
    assert results["num_scenes"] == 552 and len(results["seen_objects"]) == 16
    assert results["level1_r2"] == pytest.approx(expected["level1_r2"], abs=1e-6)
    assert results["level2_r2"] == pytest.approx(expected["level2_r2"], abs=1e-6)
    assert set(results["complexity"]) == {"real", "additive"}
    assert "| additive |" in (out / "report.md").read_text()
