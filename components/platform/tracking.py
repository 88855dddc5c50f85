"""MLflow set-up in one place: where runs go and how a pipeline run is recorded.

MLflow >= 3.13 refuses a ``./mlruns`` file store, so the default is a SQLite database
under the working directory; ``MLFLOW_TRACKING_URI`` overrides it (a server on a cluster).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from components.platform.processes import process_alive, process_start_ticks

DEFAULT_DB = "mlflow.db"
OUTPUT_FILES = ("config.yaml", "results.json", "report.md", "report.html")
CHECKPOINT_ARTIFACTS = (".json", ".safetensors")  # a checkpoint's config and weights


def tracking_uri() -> str:
    """The URI every bindkit process logs to (env var first, else local SQLite)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{Path.cwd() / DEFAULT_DB}"


def configure(experiment: str) -> str:
    """Point mlflow at our store and select (creating if needed) the experiment."""
    import mlflow

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment)
    return uri


def runtime_env_vars() -> dict[str, str]:
    """Env vars Ray workers need to log to the same store as the driver."""
    return {"MLFLOW_TRACKING_URI": tracking_uri()}


PID_TAG, PID_START_TAG, HOST_TAG = "bindkit.pid", "bindkit.pid_start", "bindkit.host"
PARAM_CHARS = 500  # long lists are cut: MLflow params are for filtering, config.yaml is whole
# Driver-side map from a trained model (its checkpoint directory, or the model object) to
# the MLflow run that trained it and the folder for its plots, so the evaluation of that
# model lands on the same run (the run itself closes when fit returns).
_MODEL_RUNS: dict[str, tuple[str, Path]] = {}


def _model_key(model: Any) -> str:
    if isinstance(model, str | Path):
        return str(Path(model).resolve())
    return f"object-{id(model)}"


def process_tags() -> dict[str, str]:
    """Tags naming this process (pid, its start time, host), so a later start on the same
    host can tell that the run's process died and mark the run KILLED."""
    return {
        PID_TAG: str(os.getpid()),
        PID_START_TAG: str(process_start_ticks(os.getpid()) or ""),
        HOST_TAG: socket.gethostname(),
    }


def mark_killed_runs(experiment: str) -> list[str]:
    """Close RUNNING runs whose driver on this host is dead (kill -9), and their children.

    Without this a killed pipeline leaves its run RUNNING forever; it is marked KILLED on
    the next start of any pipeline in the same experiment. Runs of other hosts are left
    alone: their process cannot be checked from here.
    """
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri())
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    running = client.search_runs([found.experiment_id], "attributes.status = 'RUNNING'")
    host = socket.gethostname()
    dead = {
        r.info.run_id
        for r in running
        if r.data.tags.get(HOST_TAG) == host
        and r.data.tags.get(PID_TAG, "").isdigit()
        and not process_alive(int(r.data.tags[PID_TAG]), r.data.tags.get(PID_START_TAG) or None)
    }
    parents = {r.info.run_id: r.data.tags.get("mlflow.parentRunId") for r in running}
    changed = True
    while changed:  # children, grandchildren... of a dead driver's run
        children = {run for run, parent in parents.items() if parent in dead} - dead
        dead |= children
        changed = bool(children)
    for run_id in sorted(dead):
        client.set_terminated(run_id, status="KILLED")
    return sorted(dead)


@contextlib.contextmanager
def pipeline_run(
    experiment: str, run_name: str, params: dict[str, Any] | None = None
) -> Iterator[Any]:
    """Start an MLflow run with flattened params; yields the active run.

    The run is tagged with this process's pid and host so a later start can tell that it
    was killed (``mark_killed_runs``).
    """
    import mlflow

    configure(experiment)
    killed = mark_killed_runs(experiment)
    if killed:
        print(f"marked {len(killed)} MLflow run(s) of killed processes as KILLED", flush=True)
    tags = process_tags()
    with mlflow.start_run(run_name=run_name, tags=tags) as run:
        if params:
            log_config_params(params)
        yield run


def log_config_params(params: dict[str, Any], **extra: Any) -> None:
    """Every resolved config key (dotted) plus ``extra`` as params of the active run."""
    import mlflow

    from components.platform.config import flatten

    flat = {k: str(v)[:PARAM_CHARS] for k, v in flatten({**params, **extra}).items()}
    mlflow.log_params(flat)


def remember_model_run(model: Any, run_id: str, folder: str | Path) -> None:
    """Record which run trained ``model`` (a checkpoint path or the model object) and
    where its galleries go (see ``log_model_eval``)."""
    _MODEL_RUNS[_model_key(model)] = (run_id, Path(folder))


def model_run(model: Any) -> tuple[str, Path] | None:
    """(run id, plot folder) recorded for ``model``, None when this process did not train it."""
    return _MODEL_RUNS.get(_model_key(model))


def finish_model_run(run_id: str, checkpoint: str | Path) -> None:
    """Attach a trained model's checkpoint and its training curves to its run.

    The checkpoint is a plain bindkit checkpoint directory (config + safetensors):
    ``mlflow artifacts download`` hands back exactly what ``load_checkpoint`` reads.
    """
    from mlflow.tracking import MlflowClient

    from components.platform.plots import plot_curves

    client = MlflowClient(tracking_uri())
    for path in sorted(Path(checkpoint).iterdir()):
        # the model and its config; optimizer state (train_state.pt, twice the weights) stays
        # on disk for resuming and never becomes an artifact
        if path.is_file() and path.suffix in CHECKPOINT_ARTIFACTS:
            client.log_artifact(run_id, str(path), "checkpoint")
    remember_model_run(checkpoint, run_id, Path(checkpoint).parent)
    history = {
        key: [(m.step, m.value) for m in client.get_metric_history(run_id, key)]
        for key in client.get_run(run_id).data.metrics
    }
    path = plot_curves(history, Path(checkpoint).parent / "plots" / "curves.png")
    if path is not None:
        client.log_artifact(run_id, str(path), "plots")


def log_results(results: dict[str, Any], prefix: str = "") -> None:
    """Log a nested results dict's numbers as metrics named ``a.b.c``."""
    import mlflow

    from components.platform.config import flatten

    metrics = {
        (prefix + k).replace("/", "."): float(v)
        for k, v in flatten(results).items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    if metrics:
        mlflow.log_metrics(metrics)


def _nan_to_null(tree: Any) -> Any:
    """JSON has no NaN: a number that could not be measured (e.g. a pair probe with no
    valid pairs) is written as null, so strict JSON readers accept results.json."""
    if isinstance(tree, dict):
        return {key: _nan_to_null(value) for key, value in tree.items()}
    if isinstance(tree, list | tuple):
        return [_nan_to_null(value) for value in tree]
    if isinstance(tree, float) and not math.isfinite(tree):
        return None
    return tree


def write_outputs(out: str | Path, config: Any, results: dict[str, Any], report: str) -> str | Path:
    """Write the pipeline convention files to out/ (a folder or a URI such as
    ``s3://bucket/run``) and attach them to the active MLflow run."""
    from components.platform.config import save_config
    from components.platform.storage import is_uri, staged_dir

    with staged_dir(out) as local:  # a URI: written here, uploaded when the block ends
        local.mkdir(parents=True, exist_ok=True)
        save_config(config, local / "config.yaml")
        (local / "results.json").write_text(
            json.dumps(_nan_to_null(results), indent=2, sort_keys=True, allow_nan=False)
        )
        (local / "report.md").write_text(report)
        import mlflow

        from components.platform.report_html import write_report_html

        active = mlflow.active_run()
        write_report_html(
            local,
            report,
            tracking_uri(),
            active.info.experiment_id if active else None,
            active.info.run_id if active else None,
        )
        if active is not None:  # every pipeline run keeps its headline files
            for name in OUTPUT_FILES:
                mlflow.log_artifact(str(local / name))
    announce_outputs(out)
    return out if is_uri(str(out)) else local


def log_outputs(out: str | Path) -> None:
    """Attach an output folder's reports and plots to the active MLflow run.

    Only files at the top of ``out`` and PNGs below it: a sweep's out/ also holds every
    trial's checkpoints (out/tune), which belong to the trials, not to the summary.
    """
    import mlflow

    out = Path(out)
    for path in sorted(out.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            mlflow.log_artifact(str(path))
    for path in sorted(out.rglob("*.png")):
        if path.parent != out and "tune" not in path.relative_to(out).parts:
            mlflow.log_artifact(str(path), str(path.parent.relative_to(out)))


def trial_logger(experiment: str) -> Any:
    """Ray Tune callback: one MLflow run per trial, config as params, metrics on the step.

    Ray's MLflowLoggerCallback also logs the flattened ``config/*`` as metrics (93 of them
    per trial) and uses Tune's iteration as the x axis; a trial that reports ``step`` (the
    training step) is plotted against that instead.
    """
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    class TrialLogger(MLflowLoggerCallback):
        def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
            metrics = {
                k: v for k, v in result.items() if k != "config" and not k.startswith("config/")
            }
            step = int(result.get("step") or result.get("training_iteration") or iteration)
            self.mlflow_util.log_metrics(
                run_id=self._trial_runs[trial], metrics_to_log=metrics, step=step
            )

    # The driver's pid/host on every trial run: a sweep killed with -9 leaves its trial
    # runs RUNNING, and the next start in the experiment marks them KILLED.
    return TrialLogger(
        tracking_uri=tracking_uri(),
        experiment_name=experiment,
        tags=process_tags(),
        save_artifact=False,
    )


def announce_outputs(out: str | Path) -> None:
    """Print where the results and the active MLflow run are, as a user must find them."""
    import mlflow

    from components.platform.storage import is_uri

    where = str(out) if is_uri(str(out)) else os.path.abspath(out)
    print(f"results: {where}/results.json", flush=True)
    run = mlflow.active_run()
    if run is not None:
        print(
            f"MLflow run: {run.info.run_id} (experiment {run.info.experiment_id}) "
            f"at {tracking_uri()}",
            flush=True,
        )
