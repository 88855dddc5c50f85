"""Broken checkpoints (issue 22 item 7): a clear error naming the file, before any allocation."""

from __future__ import annotations

import json
import resource
import time

import pytest
import torch
from safetensors.torch import load_file, save_file

from components.models.backbone import build_backbone
from components.models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from components.models.registry import create_model
from components.training.optim import build_optimizer, warmup_cosine
from components.training.state import TRAIN_STATE, load_train_state, save_train_state

TWO_LAYERS = {"vision_cfg": {"layers": 2}, "text_cfg": {"layers": 2}}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("clip", build_backbone("tiny", **TWO_LAYERS))


@pytest.fixture
def checkpoint(model, tmp_path):
    return save_checkpoint(model, tmp_path / "ckpt")


def _edit_config(directory, edit) -> None:
    path = directory / "config.json"
    payload = json.loads(path.read_text())
    edit(payload["config"]["backbone"])
    path.write_text(json.dumps(payload))


def test_huge_config_is_refused_before_allocating(checkpoint):
    """width 16384 x 64 layers would be ~200 B parameters: refused from the header alone."""
    _edit_config(checkpoint, lambda b: b.update(vision_cfg={"width": 16384, "layers": 64}))
    start = time.perf_counter()
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(checkpoint)
    seconds = time.perf_counter() - start
    message = str(err.value)
    assert str(checkpoint / "model.safetensors") in message and "config.json" in message
    assert "shape mismatches" in message and "missing keys" in message
    assert "visual.transformer.resblocks.63" in message or "(+" in message
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux
    assert peak_gb < 8 and seconds < 60


def test_missing_and_unexpected_keys_are_listed_by_name(checkpoint):
    weights = checkpoint / "model.safetensors"
    state = load_file(str(weights))
    state["backbone.model.renamed_scale"] = state.pop("backbone.model.logit_scale")
    save_file(state, str(weights))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(checkpoint)
    message = str(err.value)
    assert message.startswith(str(weights))
    assert "1 missing keys: backbone.model.logit_scale" in message
    assert "1 unexpected keys: backbone.model.renamed_scale" in message


def test_wrong_tensor_shape_is_reported_with_both_shapes(checkpoint):
    weights = checkpoint / "model.safetensors"
    state = load_file(str(weights))
    state["backbone.model.text_projection"] = torch.zeros(3, 5)
    save_file(state, str(weights))
    with pytest.raises(CheckpointError, match=r"text_projection \[3, 5\] vs \[128, 128\]"):
        load_checkpoint(checkpoint)


def test_truncated_weights_file_is_named(checkpoint):
    weights = checkpoint / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=rf"{weights}: not a readable safetensors file"):
        load_checkpoint(checkpoint)


def test_missing_weights_file_is_named(checkpoint):
    (checkpoint / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"model\.safetensors: missing"):
        load_checkpoint(checkpoint)


def test_config_that_is_not_json_is_named(checkpoint):
    (checkpoint / "config.json").write_text('{"name": "clip", ')
    with pytest.raises(CheckpointError, match=r"config\.json: not valid JSON"):
        load_checkpoint(checkpoint)


def test_config_without_a_backbone_is_named(checkpoint):
    (checkpoint / "config.json").write_text('{"name": "clip", "config": {}}')
    with pytest.raises(CheckpointError, match=r"config\.json: expected 'config' with a 'backbone'"):
        load_checkpoint(checkpoint)


def test_config_with_an_unknown_option_is_named(checkpoint):
    _edit_config(checkpoint, lambda b: b.update(no_such_option=3))
    with pytest.raises(CheckpointError, match=r"config\.json: cannot build its model"):
        load_checkpoint(checkpoint)


def test_training_state_that_is_not_a_tensor_file_is_named(model, tmp_path):
    optimizer = build_optimizer(model, 1e-4, 1e-3, 0.1)
    scheduler = warmup_cosine(optimizer, 1, 10)
    save_train_state(tmp_path, model, optimizer, scheduler, step=3)
    assert load_train_state(tmp_path, model, optimizer, scheduler) == 3
    (tmp_path / TRAIN_STATE).write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(CheckpointError, match=rf"{TRAIN_STATE}: not a usable training state"):
        load_train_state(tmp_path, model, optimizer, scheduler)
