"""The training loop's guards, progress lines and decode stage (no Ray Train run)."""

from __future__ import annotations

import pytest
import ray.data
import ray.train
import torch

from components.data.synthetic import SceneRowBuilder, SyntheticSpec
from components.models.backbone import build_backbone
from components.models.clip import CLIP
from components.models.occlip.occlip import OCCLIP
from components.training.decode import batch_rows, decode_batch, nested_columns
from components.training.loop import TrainConfig, epoch_batches
from components.training.progress import format_duration, format_line
from components.training.trainer import check_rows, decode_stage, export_checkpoint

SPEC = SyntheticSpec("clevr_pairs", seed=2, coverage=0.7, image_size=64)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def table():
    return (
        SceneRowBuilder(SPEC, "train").table(list(range(6))).select(["image", "caption", "graph"])
    )


@pytest.fixture(scope="module")
def backbone():
    torch.manual_seed(0)
    return build_backbone("tiny", vision_cfg={"layers": 1}, text_cfg={"layers": 1})


@pytest.mark.parametrize("key", ["steps", "batch_size", "checkpoint_every", "accum_steps"])
def test_zero_steps_batch_size_or_checkpoint_interval_is_refused(key):
    with pytest.raises(ValueError, match=rf"train\.{key} must be >= 1, got 0"):
        TrainConfig(**{key: 0})


def test_a_worker_with_less_than_one_batch_is_refused_naming_the_split():
    with pytest.raises(ValueError, match=r"split 'train': 128 rows over 1 worker.*batch_size=1000"):
        check_rows(128, "train", TrainConfig(batch_size=1000), num_workers=1)
    with pytest.raises(ValueError, match=r"63 per worker"):
        check_rows(126, "train", TrainConfig(batch_size=64), num_workers=2)
    check_rows(128, "train", TrainConfig(batch_size=64), num_workers=2)  # exactly one each


def test_an_empty_epoch_raises_with_the_row_count_instead_of_hanging(ray_cluster, table, backbone):
    shard = ray.data.from_arrow(table).iterator()
    batches = epoch_batches(shard, CLIP(backbone), TrainConfig(batch_size=8), None, "train")
    with pytest.raises(ValueError, match=r"split 'train'.* 6 rows.*batch_size=8"):
        next(batches)


def test_epochs_repeat_the_shard_in_full_batches_only(ray_cluster, table, backbone):
    shard = ray.data.from_arrow(table).iterator()
    config = TrainConfig(batch_size=4, shuffle_buffer=0)
    batches = epoch_batches(shard, CLIP(backbone), config, None, "train")
    epochs = [next(batches)[0] for _ in range(3)]
    assert epochs == [0, 1, 2]  # 6 rows: one batch of 4 per epoch, the 2 left over skipped


@pytest.mark.parametrize("model_class", [CLIP, OCCLIP])
def test_decoded_rows_collate_to_the_same_batch_as_raw_rows(table, backbone, model_class):
    model = model_class(backbone)
    decoded = decode_batch(table, model.image_transform(train=True))
    assert decoded["pixels"].shape == (6, 3, 64, 64)
    json_columns = nested_columns(table.schema)
    assert json_columns == ["graph"]
    from_decoded = model.collate(batch_rows(decoded, json_columns))
    from_raw = model.collate(table.to_pylist())
    assert from_decoded.keys() == from_raw.keys()
    for key, value in from_raw.items():
        torch.testing.assert_close(from_decoded[key], value, atol=0, rtol=0)


@pytest.mark.parametrize(
    ("options", "cache_mb", "cached"),
    [({}, 1, True), ({}, 0, False), ({"train_augment": True}, 1024, False)],
)
def test_decoded_training_rows_are_kept_only_when_deterministic_and_small(
    ray_cluster, table, options, cache_mb, cached
):
    """6 decoded 64-px images are 0.28 MiB: cached under 1 MiB, streamed with the cache off
    or with random augmentation (a cached crop would repeat every epoch)."""
    from ray.data.dataset import MaterializedDataset

    spec = {"name": "clip", "backbone": {"name": "tiny"}, **options}
    blocks = ray.data.from_arrow([table.slice(i, 1) for i in range(6)])  # one row per block
    dataset, json_columns = decode_stage(spec, blocks, train=True, rows=6, cache_mb=cache_mb)
    assert isinstance(dataset, MaterializedDataset) is cached
    assert json_columns == ["graph"]
    assert "pixels" in dataset.schema().names
    # in read order: a cache in task-completion order would change the data order, and the
    # numbers, from run to run
    assert list(dataset.to_pandas()["caption"]) == table.column("caption").to_pylist()


def test_progress_line_has_step_epoch_loss_parts_lr_rate_wait_and_eta():
    metrics = {
        "loss": 3.4123,
        "itc": 2.3,
        "rel": 1.1123,
        "lr": 1e-3,
        "samples_per_second": 84.23,
        "data_wait_fraction": 0.0132,
        "eta_seconds": 252,
    }
    line = format_line("occlip", 40, 400, 1, metrics)
    assert line == (
        "occlip step 40/400 (10%) epoch 1 | loss 3.412 (itc 2.300 rel 1.112) | lr 1.00e-03 "
        "| 84.2 samples/s | data 1.3% | ETA 4m12s"
    )
    assert format_duration(3725) == "1h02m" and format_duration(9.4) == "9s"


def test_an_exported_local_checkpoint_shares_its_bytes_and_replaces_an_earlier_export(tmp_path):
    source = tmp_path / "ray" / "step-2"
    source.mkdir(parents=True)
    (source / "model.safetensors").write_bytes(b"weights")
    stale = tmp_path / "out" / "checkpoint"
    stale.mkdir(parents=True)
    (stale / "old.bin").write_bytes(b"earlier run")

    target = export_checkpoint(ray.train.Checkpoint.from_directory(str(source)), stale)

    assert sorted(p.name for p in target.iterdir()) == ["model.safetensors"]
    assert (target / "model.safetensors").read_bytes() == b"weights"
    assert (target / "model.safetensors").stat().st_ino == (
        source / "model.safetensors"
    ).stat().st_ino
