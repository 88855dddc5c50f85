"""pipelines/evaluate.py: results.json per (model, suite), equal to a direct `evaluate`,
and the same numbers whether a suite is scored in-process or sharded over Ray actors."""

from __future__ import annotations

import json

import mlflow
import pytest
import torch

from components.data.build import dataset_card
from components.data.shards import write_shard
from components.data.synthetic import SceneRowBuilder, SyntheticSpec
from components.data.worlds import template_parser_options
from components.evaluation import evaluate
from components.evaluation.synthetic import synthetic_suites
from components.models.backbone import build_backbone
from components.models.checkpoint import load_checkpoint, save_checkpoint
from components.models.registry import create_model
from components.parsing.registry import get_parser

SPEC = SyntheticSpec("clevr_pairs", seed=2, coverage=0.7, image_size=32)
SUITES = ["swap_att", "swap_rel"]
ONE_LAYER = {"image_size": 32, "vision_cfg": {"layers": 1}, "text_cfg": {"layers": 1}}
BATCH_SIZE = 2  # several batches per suite, so the Ray path merges several shards


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A 6-scene test_heldout split with its card, and random-init CLIP and OC-CLIP checkpoints."""
    root = tmp_path_factory.mktemp("evaluate")
    data = root / "data"
    write_shard(
        SceneRowBuilder(SPEC, "test_heldout").table(list(range(6))),
        data / "test_heldout" / "part-00000.parquet",
    )
    card = dataset_card(SPEC, {"test_heldout": 6}, data)
    (data / "card.json").write_text(json.dumps(card))
    torch.manual_seed(0)
    checkpoints = {
        name: save_checkpoint(
            create_model(name, build_backbone("tiny", **ONE_LAYER)), root / name / "checkpoint"
        )
        for name in ("occlip", "clip")
    }
    return {"root": root, "split": data / "test_heldout", "checkpoints": checkpoints}


def run_pipeline(workspace, out, *overrides, models=("occlip", "clip")):
    from pipelines.evaluate import main

    models = ",".join(str(workspace["checkpoints"][n]) for n in models)
    return main(
        [
            f"models=[{models}]",
            f"suites=[synthetic:{workspace['split']}]",
            f"synthetic_suites=[{','.join(SUITES)}]",
            f"batch_size={BATCH_SIZE}",
            "device=cpu",
            f"out={out}",
            *overrides,
        ]
    )


@pytest.fixture(scope="module")
def in_process(workspace):
    """One in-process run (no suite reaches ray_threshold), logged to its own MLflow store."""
    out = workspace["root"] / "in_process"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{workspace['root'] / 'mlflow.db'}")
        results = run_pipeline(workspace, out, "ray_threshold=100000")
        runs = mlflow.search_runs(search_all_experiments=True)
    return {"out": out, "results": results, "runs": runs}


def test_results_json_has_every_model_and_suite_and_equals_direct_evaluate(workspace, in_process):
    written = json.loads((in_process["out"] / "results.json").read_text())
    assert written == in_process["results"]
    assert set(written) == {"occlip", "clip"}
    suites = synthetic_suites(workspace["split"], SUITES)
    assert all(len(bench) >= 2 for bench in suites.values())
    for name, checkpoint in workspace["checkpoints"].items():
        model = load_checkpoint(checkpoint).eval()
        if name == "occlip":  # the card's world gives the template parser its vocabulary
            model.parser = get_parser("template", **template_parser_options("clevr_pairs"))
        expected = {
            bench.name: evaluate(model, bench, batch_size=BATCH_SIZE, progress=False).summary()[
                "accuracy"
            ]
            for bench in suites.values()
        }
        assert set(expected) == {"test_heldout/swap_att", "test_heldout/swap_rel"}
        assert written[name] == expected


def test_run_writes_tables_plots_report_and_logs_to_mlflow(in_process):
    out = in_process["out"]
    for name in ("results.md", "results.csv", "categories.csv", "report.md", "config.yaml"):
        assert (out / name).is_file(), name
    assert (out / "plots" / "test_heldout.png").is_file()
    assert "| test_heldout/swap_att | accuracy |" in (out / "results.md").read_text()
    runs = in_process["runs"]
    assert len(runs) == 1
    run = runs.iloc[0]
    assert (
        run["metrics.clip.test_heldout.swap_att"]
        == in_process["results"]["clip"]["test_heldout/swap_att"]
    )
    assert run["params.ray_threshold"] == "100000"


def rows_of(path, model):
    """A results CSV's header and the rows of one model."""
    lines = path.read_text().splitlines()
    return [lines[0]] + [line for line in lines[1:] if line.startswith(f"{model},")]


@pytest.mark.slow
def test_ray_sharded_suites_give_the_in_process_numbers(
    workspace, in_process, ray_cluster, mlflow_uri
):
    # OC-CLIP only: its actor must also build the world's parser; CLIP's path is the same code
    # and each model costs an actor start-up (seconds on a busy 2-core machine).
    out = workspace["root"] / "ray"
    results = run_pipeline(workspace, out, "ray_threshold=1", "ray_actors=2", models=("occlip",))
    assert "ray x2" in (out / "report.md").read_text()  # the suites really went to actors
    assert results == {"occlip": in_process["results"]["occlip"]}
    for table in ("results.csv", "categories.csv"):  # every number, not just the headline
        assert rows_of(out / table, "occlip") == rows_of(in_process["out"] / table, "occlip")


def test_models_sharing_a_name_are_told_apart_by_their_parent_directory(workspace, tmp_path):
    from components.evaluation.checkpoint_runs import model_labels

    clip = load_checkpoint(workspace["checkpoints"]["clip"])
    first = save_checkpoint(clip, tmp_path / "run_a" / "checkpoint")
    second = save_checkpoint(clip, tmp_path / "run_b" / "checkpoint")
    occlip = workspace["checkpoints"]["occlip"]
    assert model_labels([first, occlip, second]) == ["clip-run_a", "occlip", "clip-run_b"]


def test_dcsm_text_handling_applies_to_whatsup_and_clevr_bind_only():
    from components.evaluation.dcsm_protocol import dcsm_rewrite

    assert dcsm_rewrite("whatsup/controlled_a")("A mug on a table") == (
        "An image of A mug above a table"
    )
    assert dcsm_rewrite("whatsup/controlled_b")("A cube in front of a sphere") == (
        "An image of A cube below a sphere"
    )
    assert dcsm_rewrite("clevr_bind/rel")("cube behind sphere") == "An image of a cube above sphere"
    # "on" is rewritten only on WhatsUp, and only as a word ("one" stays).
    assert dcsm_rewrite("clevr_bind/two_object")("one cube on sphere") == (
        "An image of a one cube on sphere"
    )
    assert dcsm_rewrite("sugarcrepe/swap_att") is None
    assert dcsm_rewrite("test_heldout/swap_att") is None
