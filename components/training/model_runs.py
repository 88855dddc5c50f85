"""One model fitted under its own nested MLflow run, its chosen checkpoint exported.

Every training pipeline trains each (model, seed) the same way: open a nested run under the
pipeline's run, log the resolved config as its params, ``fit`` with Ray Train reporting to
that run, export the checkpoint validation chose (the last one without validation) to a
plain folder, and attach it and the training curves to the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from components.data.synthetic_inputs import SyntheticData, split_rows
from components.platform.tracking import finish_model_run, log_config_params, tracking_uri
from components.training.loop import TrainConfig
from components.training.state import check_resume_target
from components.training.trainer import (
    ScalingSettings,
    best_checkpoint,
    check_rows,
    export_checkpoint,
    fit,
)


def check_before_ray(
    data: str,
    synthetic: SyntheticData,
    split: str,
    train: TrainConfig,
    scaling: ScalingSettings,
    resume: str = "",
) -> None:
    """The training checks a config can pass before Ray starts or the world is built: the
    batch fits the training split, and a resume target is a training checkpoint."""
    check_split_fits_batch(data, synthetic, split, train, scaling)
    check_resume_target(resume)


def check_split_fits_batch(
    data: str,
    synthetic: SyntheticData,
    split: str,
    train: TrainConfig,
    scaling: ScalingSettings,
) -> None:
    """Refuse a ``train.batch_size`` above one worker's share of the training split before
    Ray starts or a world is built (it failed after both, 26-85 s in): the split's size
    is known from the config for a synthetic world, from the data's card or Parquet
    footers for ``data=``."""
    rows = split_rows(data, synthetic, split)
    if rows is not None:
        check_rows(rows, split, train, scaling.num_workers)


def fit_model_run(
    spec: dict[str, Any],
    train: TrainConfig,
    dataset: Any,
    scaling: ScalingSettings,
    *,
    run_name: str,
    parent_run_id: str,
    params: dict[str, Any],
    storage_path: str,
    target: Path,
    ray_run_name: str = "",
    tags: dict[str, Any] | None = None,
    **fit_options: Any,
) -> Path:
    """Fit ``spec`` in a nested MLflow run named ``run_name`` (params: ``params`` plus
    ``tags``) and return the exported checkpoint folder ``target``.

    Ray Train's own run folder is ``storage_path``/``ray_run_name`` (``run_name`` when
    empty); ``fit_options`` (resume, val_dataset, train_rows) go to ``fit`` as they are.
    """
    import mlflow

    with mlflow.start_run(run_name=run_name, nested=True, parent_run_id=parent_run_id) as run:
        log_config_params(params, **(tags or {}))
        result = fit(
            spec,
            train,
            dataset,
            scaling,
            storage_path=storage_path,
            run_name=ray_run_name or run_name,
            mlflow={"tracking_uri": tracking_uri(), "run_id": run.info.run_id},
            **fit_options,
        )
    exported = export_checkpoint(best_checkpoint(result), target)
    finish_model_run(run.info.run_id, exported)  # checkpoint + curves on the model's run
    return exported
