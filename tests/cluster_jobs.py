"""Driver programs the two-node tests run as separate processes (as `ray job submit` would).

Each joins the cluster in RAY_ADDRESS through ``init_ray()`` (token from RAY_AUTH_TOKEN),
works only on URIs (s3://...), and prints one JSON line ``RESULT {...}`` at the end.

    python tests/cluster_jobs.py train DATA_URI STORAGE_URI RUN_NAME STEPS MLFLOW_URI RUN_ID
    python tests/cluster_jobs.py tune DATA_URI STORAGE_URI [STEPS MLFLOW_URI]
    python tests/cluster_jobs.py build OUT_DIR SCENES ACTORS
"""

from __future__ import annotations

import json
import sys
import time

from components.data.shards import shard_files
from components.platform.runtime import init_ray
from components.training.loop import TrainConfig
from components.training.trainer import ScalingSettings, fit

MODEL = {"name": "clip", "backbone": {"name": "tiny"}}
COLUMNS = ["image", "caption", "graph"]
SLOT = "train_slot"  # one per node: Ray Train places one worker on each
HEAD_SLOT = "head_slot"  # on the head node only: drivers that must outlive a worker node


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


def _trial_run(mlflow_uri: str, experiment_id: str, trial_id: str) -> str:
    """The MLflow run of a Tune trial, found by its trial id (a restarted trial reuses it)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_uri)
    found = client.search_runs([experiment_id], f"tags.trial_id = '{trial_id}'")
    if found:
        return found[0].info.run_id
    return client.create_run(experiment_id, tags={"trial_id": trial_id}).info.run_id


def tune(data: str, storage: str, steps: str = "2", mlflow_uri: str = "") -> dict:
    """Two trials (learning rates), run at once, each a one-worker Train run that holds a
    whole node's ``train_slot``: one trial trains on each node. The trial drivers stay on
    the head (``head_slot``); a trial whose worker's node is lost restarts that worker from
    its last checkpoint on object storage (Train's ``max_failures``, ``resume="auto"``)."""
    import ray.tune

    dataset = _dataset(data)
    experiment_id = ""
    if mlflow_uri:  # the store is created here, once: two trials migrating one sqlite file race
        from mlflow.tracking import MlflowClient

        experiment_id = MlflowClient(mlflow_uri).create_experiment("cluster-tune")

    def trial(config: dict) -> None:
        trial_id = ray.tune.get_context().get_trial_id()
        run_id = _trial_run(mlflow_uri, experiment_id, trial_id) if mlflow_uri else ""
        train_config = _train_config(int(steps))
        train_config.head_lr = config["head_lr"]
        result = fit(
            MODEL,
            train_config,
            dataset,
            ScalingSettings(
                num_workers=1, cpus_per_worker=0.5, max_failures=3, worker_resources={SLOT: 1}
            ),
            storage_path=storage,
            run_name=f"train-{trial_id}",
            mlflow={"tracking_uri": mlflow_uri, "run_id": run_id} if mlflow_uri else None,
            resume="auto",
        )
        ray.tune.report(
            {
                "step": result.metrics["step"],
                "start_step": result.metrics.get("start_step", 0),
                "run_id": run_id,
            }
        )

    tuner = ray.tune.Tuner(
        ray.tune.with_resources(trial, {"CPU": 0.1, HEAD_SLOT: 0.1}),
        param_space={"head_lr": ray.tune.grid_search([1e-3, 3e-3])},
        tune_config=ray.tune.TuneConfig(max_concurrent_trials=2),
        run_config=ray.tune.RunConfig(name="sweep", storage_path=storage),
    )
    grid = tuner.fit()
    trials = [
        {k: r.metrics[k] for k in ("step", "start_step", "run_id")} for r in grid if not r.error
    ]
    return {"trials": len(grid), "errors": len(grid.errors), "results": trials}


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
