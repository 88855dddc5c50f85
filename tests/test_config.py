"""Config loading: dataclass defaults < YAML file < key=value overrides."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from components.platform.config import ConfigError, load_config


@dataclass
class Inner:
    lr: float = 1e-3
    layers: int = 2


@dataclass
class Demo:
    name: str = "x"
    inner: Inner = field(default_factory=Inner)
    suites: list[str] = field(default_factory=lambda: ["swap_att"])


def test_file_then_overrides_win(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: fromfile\ninner:\n  lr: 0.5\n")
    config = load_config(Demo, ["--config", str(path), "inner.layers=7", "suites=[a,b]"])
    assert (config.name, config.inner.lr, config.inner.layers) == ("fromfile", 0.5, 7)
    assert config.suites == ["a", "b"]
    assert isinstance(config, Demo) and isinstance(config.inner, Inner)


def test_unknown_key_and_bad_type_fail_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="inner.lrr"):
        load_config(Demo, ["inner.lrr=1"])
    with pytest.raises(ConfigError, match="layers"):
        load_config(Demo, ["inner.layers=many"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Demo, ["--config", str(tmp_path / "missing.yaml")])


def test_mistyped_occlip_option_fails_at_parse_time_with_a_hint():
    from pipelines.train_occlip import TrainOcclipConfig

    with pytest.raises(ConfigError, match="did you mean 'occlip.depth'"):
        load_config(TrainOcclipConfig, ["occlip.dpeth=3"])
    with pytest.raises(ConfigError, match="occlip.relation_head"):
        load_config(TrainOcclipConfig, ["occlip.relation_head=sum"])
