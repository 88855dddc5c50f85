"""One backbone block in every entry point that builds a backbone (issue 38).

Each takes ``backbone.*`` (components.models.backbone.BackboneConfig) the same way, and a
bad value is one line naming its key, from load_config alone: before Ray starts.
"""

from __future__ import annotations

import importlib

import pytest

from components.models.backbone import BackboneConfig
from components.platform.config import ConfigError, load_config

ENTRY_POINTS = {
    "pipelines.train_occlip": "TrainOcclipConfig",
    "pipelines.train_dcsm": "TrainDcsmConfig",
    "pipelines.train_presence": "TrainPresenceConfig",
    "pipelines.evaluate": "EvaluateConfig",
    "pipelines.probe_binding": "ProbeBindingConfig",
    "pipelines.binding_function": "BindingFunctionConfig",
    "tune.sweep_probes": "SweepProbesConfig",
}


def _schema(module: str) -> type:
    return getattr(importlib.import_module(module), ENTRY_POINTS[module])


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_backbone_name_and_pretrained_set_the_backbone_block(module):
    config = load_config(_schema(module), ["backbone.name=small", 'backbone.pretrained=""'])
    assert isinstance(config.backbone, BackboneConfig)
    assert (config.backbone.name, config.backbone.pretrained) == ("small", "")
    assert config.backbone.spec()["name"] == "small"
    assert config.backbone.spec()["pretrained"] is None


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_the_default_backbone_is_the_tiny_random_init_one(module):
    backbone = load_config(_schema(module)).backbone
    assert (backbone.name, backbone.pretrained) == ("tiny", "")


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_a_bad_backbone_name_is_one_line_naming_the_key(module):
    with pytest.raises(ConfigError) as error:
        load_config(_schema(module), ["backbone.name=no-such-backbone"])
    message = str(error.value)
    assert "backbone.name" in message and "no-such-backbone" in message
    assert "\n" not in message


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_a_flat_backbone_string_is_refused_with_the_block_named(module):
    with pytest.raises(ConfigError, match="backbone"):
        load_config(_schema(module), ["backbone=tiny"])


@pytest.mark.parametrize(
    "module", ["pipelines.probe_binding", "pipelines.binding_function", "tune.sweep_probes"]
)
def test_a_missing_backbone_checkpoint_is_refused_where_it_is_read(module, tmp_path):
    with pytest.raises(ConfigError, match=r"backbone\.checkpoint="):
        load_config(_schema(module), [f"backbone.checkpoint={tmp_path / 'missing'}"])


@pytest.mark.parametrize(
    "module", ["pipelines.train_occlip", "pipelines.train_presence", "pipelines.evaluate"]
)
def test_a_backbone_checkpoint_is_refused_where_it_would_be_ignored(module, tmp_path):
    with pytest.raises(ConfigError, match=r"backbone\.checkpoint="):
        load_config(_schema(module), [f"backbone.checkpoint={tmp_path}"])


def test_train_dcsm_falls_back_from_a_missing_checkpoint_without_refusing_it(tmp_path):
    config = load_config(_schema("pipelines.train_dcsm"), [f"backbone.checkpoint={tmp_path}/x"])
    assert config.fallback and config.backbone.checkpoint == f"{tmp_path}/x"
