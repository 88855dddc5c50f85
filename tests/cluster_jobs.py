"""Driver programs the two-node tests run as separate processes (as `ray job submit` would).

Each joins the cluster in RAY_ADDRESS through ``init_ray()`` (token from RAY_AUTH_TOKEN),
works only on URIs (s3://...), and prints one JSON line ``RESULT {...}`` at the end.

    python tests/cluster_jobs.py train DATA_URI STORAGE_URI RUN_NAME STEPS MLFLOW_URI RUN_ID
    python tests/cluster_jobs.py tune DATA_URI STORAGE_URI
    python tests/cluster_jobs.py build OUT_DIR SCENES ACTORS
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.data.shards import shard_files  # noqa: E402
from components.runtime import init_ray  # noqa: E402
from components.training.loop import TrainConfig  # noqa: E402
from components.training.trainer import ScalingSettings, fit  # noqa: E402

MODEL = {"name": "clip", "backbone": {"name": "tiny"}}
COLUMNS = ["image", "caption", "graph"]
SLOT = "train_slot"  # one per node: Ray Train places one worker on each


def _dataset(data: str):
    import ray.data

    return ray.data.read_parquet(shard_files(data)).select_columns(COLUMNS)


def _train_config(steps: int) -> TrainConfig:
    # log_every == checkpoint_every: a step's metrics are logged only where a checkpoint is
    # written, so a resumed run never logs a step twice.
    return TrainConfig(
        steps=steps, batch_size=8, warmup_steps=1, checkpoint_every=2, log_every=2,
        shuffle_buffer=0,
    )  # fmt: skip


def train(
    data: str, storage: str, name: str, steps: str, mlflow_uri="", run_id="", workers="2"
) -> dict:
    """A Ray Train run, one worker per node (``train_slot``), storage on ``storage``."""
    started = time.perf_counter()
    result = fit(
        MODEL,
        _train_config(int(steps)),
        _dataset(data),
        ScalingSettings(
            num_workers=int(workers),
            cpus_per_worker=0.5,
            max_failures=3,
            worker_resources={SLOT: 1},
        ),
        storage_path=storage,
        run_name=name,
        mlflow={"tracking_uri": mlflow_uri, "run_id": run_id} if mlflow_uri else None,
    )
    return {
        "metrics": {k: v for k, v in result.metrics.items() if isinstance(v, int | float)},
        "checkpoint": result.checkpoint.path,
        "seconds": time.perf_counter() - started,
    }


def tune(data: str, storage: str) -> dict:
    """Two trials (learning rates), each a 2-worker Train run, results on object storage."""
    import ray.tune

    dataset = _dataset(data)

    def trial(config: dict) -> None:
        train_config = _train_config(2)
        train_config.head_lr = config["head_lr"]
        fit(
            MODEL,
            train_config,
            dataset,
            ScalingSettings(num_workers=1, cpus_per_worker=0.5, worker_resources={SLOT: 0.5}),
            storage_path=storage,
            run_name=f"train-{ray.tune.get_context().get_trial_id()}",
        )
        ray.tune.report({"done": 1})

    tuner = ray.tune.Tuner(
        ray.tune.with_resources(trial, {"CPU": 0.1}),
        param_space={"head_lr": ray.tune.grid_search([1e-3, 3e-3])},
        tune_config=ray.tune.TuneConfig(max_concurrent_trials=2),
        run_config=ray.tune.RunConfig(name="sweep", storage_path=storage),
    )
    grid = tuner.fit()
    return {"trials": len(grid), "errors": len(grid.errors)}


def build(out: str, scenes: str, actors: str) -> dict:
    """A synthetic build with ``actors`` Ray Data actors of one node's 2 CPUs each."""
    from components.data.build import build_synthetic
    from components.data.synthetic import SyntheticSpec

    spec = SyntheticSpec("clevr_pairs", 0, 0.7, 64)
    card = build_synthetic(
        spec, int(scenes), out, rows_per_shard=25, num_cpus_per_task=2, num_actors=int(actors)
    )
    return card["build"]


if __name__ == "__main__":
    init_ray()
    command, *args = sys.argv[1:]
    result = {"train": train, "tune": tune, "build": build}[command](*args)
    print("RESULT " + json.dumps(result), flush=True)
