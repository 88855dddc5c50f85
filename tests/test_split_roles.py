"""Split roles decide what a run may read for what: selection never touches a final split."""

from __future__ import annotations

import json

import pytest

from components.platform.config import ConfigError, load_config
from pipelines.train_dcsm import TrainDcsmConfig
from pipelines.train_occlip import TrainOcclipConfig


def _own_data(tmp_path):
    """A build_shards-like output: train / val / test with their roles in the card."""
    for split in ("train", "val", "test"):
        (tmp_path / split).mkdir()
    card = {"splits": {"train": 800, "val": 100, "test": 100}}
    card["split_roles"] = {"train": "train", "val": "select", "test": "final"}
    (tmp_path / "card.json").write_text(json.dumps(card))
    return tmp_path


@pytest.mark.parametrize("schema", [TrainOcclipConfig, TrainDcsmConfig])
def test_auto_splits_come_from_the_world_card(schema):
    config = load_config(schema, [])
    assert (config.select_split, config.eval_split) == ("val_heldout", "test_heldout")


@pytest.mark.parametrize("schema", [TrainOcclipConfig, TrainDcsmConfig])
def test_own_data_trains_on_its_card_roles_with_no_split_flags(schema, tmp_path):
    config = load_config(schema, [f"data={_own_data(tmp_path)}"])
    assert (config.select_split, config.eval_split) == ("val", "test")


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("train.val_split=test_heldout", "train.val_split"),
        ("select_split=test_heldout", "select_split"),
        ("select_split=test_seen", "select_split"),
        ("train_split=val_heldout", "train_split"),
    ],
)
def test_a_final_split_chosen_for_selection_is_one_line_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=rf"^{key}=.* is not allowed: a split whose role is"):
        load_config(TrainOcclipConfig, [override])


def test_a_split_the_data_does_not_have_is_refused_whatever_its_case():
    with pytest.raises(
        ConfigError, match=r"^select_split='Test_heldout' is not allowed: a split of the data"
    ):
        load_config(TrainOcclipConfig, ["select_split=Test_heldout"])


def test_an_empty_eval_split_is_a_selection_only_run():
    config = load_config(TrainOcclipConfig, ["eval_split="])
    assert (config.select_split, config.eval_split) == ("val_heldout", "")
