"""Numbers a reviewer accepts: seeds, validation before test, NegCLIP, paper-faithful OC-CLIP."""

from __future__ import annotations

import json

import pytest
import torch

from components.data.splits import SplitAccess, default_splits
from components.evaluation.seeds import summarise, train_select_test
from components.models.backbone import build_backbone
from components.models.negclip import NegCLIP, hard_negative_infonce
from components.models.occlip.occlip import OCCLIP
from components.models.occlip.occlip_options import OcclipOptions
from components.parsing.scene_graph import SceneGraph

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_summary_keeps_means_sd_and_one_entry_per_seed():
    summary = summarise({"clip": {"swap_att": [0.5, 0.7, 0.6]}})
    assert summary["clip"]["swap_att"] == pytest.approx(0.6)
    assert summary["sd"]["clip"]["swap_att"] == pytest.approx(0.1)
    assert summary["per_seed"]["clip"]["swap_att"] == [0.5, 0.7, 0.6]


def test_a_test_split_cannot_be_read_before_the_final_evaluation(tmp_path):
    access = SplitAccess(tmp_path)
    access.path("train", "train")
    access.path("val_heldout", "select")
    with pytest.raises(RuntimeError, match="split 'test_heldout' has role 'final'"):
        access.path("test_heldout", "select")
    with pytest.raises(RuntimeError, match="before final"):
        access.path("test_heldout", "final")
    access.final()
    with pytest.raises(RuntimeError, match="after the final evaluation began"):
        access.path("train", "train")
    assert access.path("test_heldout", "final") == tmp_path / "test_heldout"


def test_every_seed_trains_and_validates_before_the_one_test_read(tmp_path):
    access, events = SplitAccess(tmp_path), []

    def train(seed):
        events.append(("train", seed))
        return seed

    def evaluate(seed, split_dir):
        events.append((split_dir.name, seed))
        return {"m": {"swap_att": 0.5 + seed / 10}}

    results = train_select_test([0, 1, 2], train, evaluate, access, "val_heldout", "test_heldout")
    first_test = events.index(("test_heldout", 0))
    assert all(name != "test_heldout" for name, _ in events[:first_test])
    assert [e for e in events if e[0] == "train"] == [("train", s) for s in (0, 1, 2)]
    assert results["per_seed"]["m"]["swap_att"] == pytest.approx([0.5, 0.6, 0.7])
    assert results["val"]["per_seed"]["m"]["swap_att"] == pytest.approx([0.5, 0.6, 0.7])


def test_negclip_hard_negatives_raise_the_loss_only_when_valid():
    logits = torch.eye(3) * 5  # each image matches its caption
    hard = torch.full((3, 3), 0.0)
    hard.fill_diagonal_(4.9)  # each image's own near-miss scores almost as high
    none_valid = hard_negative_infonce(logits, hard, torch.zeros(3, dtype=torch.bool))
    assert float(none_valid) == pytest.approx(
        0.5 * 2 * float(torch.nn.functional.cross_entropy(logits, torch.arange(3)))
    )
    assert (
        float(hard_negative_infonce(logits, hard, torch.ones(3, dtype=torch.bool)))
        > float(none_valid) + 0.2
    )


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_backbone("tiny", vision_cfg={"layers": 4}, text_cfg={"layers": 2})


def test_negclip_batches_one_negative_of_the_allowed_kinds_per_row(tiny):
    from tests.test_occlip import png

    row = {
        "image": png("red"),
        "caption": "a red cube",
        "negatives": [
            {"kind": "swap_att", "caption": "a blue cube", "positive_caption": None},
            {"kind": "negation", "caption": "a red cube, and no red cube", "positive_caption": "P"},
        ],
    }
    model = NegCLIP(tiny, negative_kinds=["swap_att"])
    batch = model.collate([row, {**row, "negatives": []}])
    assert batch["negative_valid"].tolist() == [True, False]
    expected = model.collator.texts(["a blue cube"])[0]
    assert torch.equal(batch["negative_tokens"][0], expected)
    loss, parts = model.loss(batch)
    loss.backward()
    assert torch.isfinite(loss) and parts["itc"] > 0


GRAPH = SceneGraph.build([("cube", ["red"]), ("sphere", ["blue"])], [(0, "left of", 1)])
SWAPPED = SceneGraph.build([("cube", ["red"]), ("sphere", ["blue"])], [(1, "left of", 0)])


def test_paper_faithful_options_build_train_and_keep_relations_asymmetric(tiny):
    from tests.test_occlip import png

    torch.manual_seed(0)
    model = OCCLIP(
        tiny,
        OcclipOptions(
            num_default_tokens=1,
            patch_positions=False,
            query_residual=False,
            image_layer=-3,
            relation_head="joint",
            negation="ignore",
        ),
    )
    assert not model.binding.blocks[0].residual and model.binding.blocks[1].residual
    assert not hasattr(model.scorer, "obj_out")  # one MLP over [r; S_s; S_o]
    rows = [{"image": png(c), "caption": "c", "graph": GRAPH.to_dict()} for c in ("red", "blue")]
    loss, parts = model.loss(model.collate(rows))
    loss.backward()
    assert torch.isfinite(loss) and parts["rel"] > 0
    from PIL import Image

    scores = model.score([Image.new("RGB", (64, 64), "red")], [GRAPH, SWAPPED])
    assert float(scores[0, 0]) != pytest.approx(float(scores[0, 1]), abs=1e-7)


@pytest.mark.slow
def test_train_occlip_reads_test_once_per_seed_after_all_training(
    ray_cluster, mlflow_uri, tmp_path
):
    from pathlib import Path

    from pipelines import train_occlip

    smoke = Path(train_occlip.__file__).parent / "configs" / "smoke" / "train_occlip.yaml"
    out = tmp_path / "out"
    results = train_occlip.main(
        ["--config", str(smoke), "model=negclip", "seeds=[0,1]", f"out={out}"]
    )
    for suite, runs in results["per_seed"]["negclip"].items():
        assert len(runs) == 2, suite
        assert results["negclip"][suite] == pytest.approx(sum(runs) / 2)
    log = json.loads((out / "split_access.json").read_text())
    test_reads = [i for i, e in enumerate(log) if e["split"].startswith("test")]
    assert len(test_reads) == 2 and min(test_reads) > max(
        i for i, e in enumerate(log) if not e["split"].startswith("test")
    )
    assert {e["split"] for e in log} == {"train", "val_heldout", "test_heldout"}
    assert (out / "negclip" / "checkpoint").is_dir()
    assert (out / "negclip" / "seed1" / "checkpoint").is_dir()


def test_whatsup_on_under_rewrite_applies_to_every_model_or_none():
    from components.evaluation.dcsm_protocol import text_rewrite

    caption = "A mug on a table"
    for dcsm in (False, True):
        assert "above" in text_rewrite("whatsup/controlled_a", dcsm)(caption)
        off = text_rewrite("whatsup/controlled_a", dcsm, whatsup_on_under=False)
        assert off is None or " on " in off(caption)
    assert text_rewrite("whatsup/controlled_a", False)(caption) == "A mug above a table"
    assert text_rewrite("sugarcrepe/swap_att", False) is None


def test_runs_of_one_seed_each_merge_into_one_entry_per_seed():
    from components.evaluation.seeds import merge_runs

    runs = [
        {**summarise({"m": {"a": [x]}}), "val": summarise({"m": {"a": [x + 1]}})}
        for x in (0.1, 0.2, 0.3)
    ]
    merged = merge_runs(runs)
    assert merged["per_seed"]["m"]["a"] == [0.1, 0.2, 0.3]
    assert merged["m"]["a"] == pytest.approx(0.2)
    assert merged["val"]["per_seed"]["m"]["a"] == [1.1, 1.2, 1.3]


def test_a_missing_selection_split_is_refused_before_training(tmp_path):
    from components.data.splits import require_select_split

    (tmp_path / "val").mkdir()
    require_select_split(tmp_path, "val")
    require_select_split(tmp_path, "")  # no selection asked for
    with pytest.raises(
        FileNotFoundError, match=r"select_split=val_heldout: no .*set select_split=val"
    ):
        require_select_split(tmp_path, "val_heldout")


def test_split_roles_come_from_the_card_not_the_name(tmp_path):
    """A split named without "test" but marked final in the card is still refused for
    selection, and a capitalised "Test_heldout" is final by its name on an older card."""
    (tmp_path / "card.json").write_text(
        json.dumps(
            {
                "splits": {"train": 9, "holdout": 1, "Test_heldout": 1},
                "split_roles": {"holdout": "final"},
            }
        )
    )
    access = SplitAccess(tmp_path)
    assert access.roles == {"holdout": "final", "train": "train", "Test_heldout": "final"}
    for split in ("holdout", "Test_heldout"):
        with pytest.raises(RuntimeError, match=f"split '{split}' has role 'final'"):
            access.path(split, "select")
    with pytest.raises(RuntimeError, match="has role 'final', not 'train'"):
        access.path("holdout", "train")


def test_auto_splits_follow_the_card_roles():
    world = {
        "train": "train",
        "val": "select",
        "val_heldout": "select",
        "test_heldout": "final",
        "test_seen": "final",
    }
    assert default_splits(world) == ("val_heldout", "test_heldout")
    assert default_splits({"train": "train", "val": "select", "test": "final"}) == ("val", "test")
    assert default_splits({"train": "train"}) == ("", "")


def test_a_selection_only_run_never_opens_a_final_split(tmp_path):
    access, events = SplitAccess(tmp_path), []

    def evaluate(seed, split_dir):
        events.append(split_dir.name)
        return {"m": {"swap_att": 0.5}}

    results = train_select_test([0, 1], lambda seed: seed, evaluate, access, "val_heldout", "")
    assert events == ["val_heldout", "val_heldout"] and not access.in_final
    assert [entry["purpose"] for entry in access.log] == ["select", "select"]
    assert results["val"]["per_seed"]["m"]["swap_att"] == [0.5, 0.5]
