"""Training and evaluation on object storage: data=, out= and checkpoints as s3:// URIs.

Everything goes through moto's S3 server over HTTP (tests/s3_server.py). The slow test
asks for the Ray cluster before the server, so, run alone, Ray's workers start without the
AWS variables, as they do when an earlier test module started the cluster: reading shards
and writing Ray Train checkpoints must work from the filesystem objects the driver hands
them, not from the workers' environment.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "pipelines" / "configs" / "smoke" / "train_occlip.yaml"


@pytest.mark.slow
def test_train_occlip_on_s3_data_writes_run_to_s3_and_its_checkpoint_loads_from_s3(
    ray_cluster, s3_server, mlflow_uri, one_torch_thread, tmp_path
):
    import torch
    from PIL import Image

    from components.data.build import build_synthetic
    from components.data.shards import read_shards
    from components.data.synthetic import SyntheticSpec
    from components.models.checkpoint import load_checkpoint
    from components.platform.storage import copy_tree
    from pipelines.train_occlip import main

    bucket = s3_server.bucket("pipes")
    build_synthetic(SyntheticSpec("clevr_pairs", 1, 0.7, 64), 160, tmp_path / "shards")
    copy_tree(tmp_path / "shards", f"s3://{bucket}/shards")
    results = main(
        [
            "--config",
            str(SMOKE),
            "model=clip",
            f"data=s3://{bucket}/shards",
            f"out=s3://{bucket}/run",
        ]
    )
    keys = s3_server.keys(bucket, "run/")
    for name in (
        "results.json",
        "report.md",
        "report.html",
        "config.yaml",
        "split_access.json",
        "clip/checkpoint/config.json",
        "clip/checkpoint/model.safetensors",
        "clip/plots/curves.png",
    ):
        assert f"run/{name}" in keys, f"{name} not in {keys}"
    assert any(k.startswith("run/ray/clip-seed0/checkpoint_") for k in keys), keys
    written = json.loads(s3_server.read(bucket, "run/results.json"))
    assert written["clip"] == results["clip"] and set(results["clip"]) >= {"swap_att"}
    log = json.loads(s3_server.read(bucket, "run/split_access.json"))
    assert [e["split"] for e in log] == ["train", "val_heldout", "test_heldout"]

    remote = load_checkpoint(f"s3://{bucket}/run/clip/checkpoint").eval()
    copy_tree(f"s3://{bucket}/run/clip/checkpoint", tmp_path / "checkpoint")
    local = load_checkpoint(tmp_path / "checkpoint").eval()
    rows = read_shards(f"s3://{bucket}/shards/test_heldout", ["image", "caption"]).to_pylist()
    images = [Image.open(io.BytesIO(r["image"])).convert("RGB") for r in rows[:3]]
    captions = [r["caption"] for r in rows[:3]]
    with torch.no_grad():
        remote_scores, local_scores = remote.score(images, captions), local.score(images, captions)
    assert remote_scores.shape == (3, 3)
    assert torch.equal(remote_scores, local_scores)


def test_staged_output_and_local_copy_round_trip_through_s3(s3_server, tmp_path):
    from components.platform.storage import copy_tree, local_copy, staged_dir

    bucket = s3_server.bucket("stage")
    uri = f"s3://{bucket}/run"
    with staged_dir(uri) as out:
        assert not str(out).startswith("s3:")  # a real local folder
        (out / "ckpt").mkdir()
        (out / "ckpt" / "weights.bin").write_bytes(bytes(range(256)) * 40)
        (out / "results.json").write_text('{"a": 1}')
        with staged_dir(uri) as inner:  # a nested block writes into the same folder
            assert inner == out
        assert s3_server.keys(bucket) == []  # nothing uploaded before the block ends
    objects = [k for k in s3_server.keys(bucket) if not k.endswith("/")]  # not dir markers
    assert objects == ["run/ckpt/weights.bin", "run/results.json"]
    with local_copy(uri) as copy:
        assert (copy / "ckpt" / "weights.bin").read_bytes() == bytes(range(256)) * 40
        assert json.loads((copy / "results.json").read_text()) == {"a": 1}
    assert not copy.exists()  # the download was temporary
    with pytest.raises(RuntimeError), staged_dir(f"s3://{bucket}/failed") as out:
        (out / "half.json").write_text("{}")
        raise RuntimeError("the run failed")
    assert s3_server.keys(bucket, "failed/") == []  # a failed block uploads nothing
    copy_tree(uri, tmp_path / "back")
    assert (tmp_path / "back" / "results.json").read_text() == '{"a": 1}'
    with staged_dir(tmp_path / "plain") as plain:  # a local out= is used as it is
        assert plain == tmp_path / "plain"


def test_missing_s3_data_is_one_line_error_before_ray_starts(s3_server, tmp_path):
    from components.platform.config import InvalidValue, check_path

    bucket = s3_server.bucket("missing")
    argv = ["pipelines/train_occlip.py", f"data=s3://{bucket}/missing", f"out={tmp_path}/o"]
    done = subprocess.run(
        [sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: data='s3://{bucket}/missing' is not allowed: an existing folder"
    ]
    assert "Ray" not in done.stdout + done.stderr  # refused before any cluster starts
    with pytest.raises(InvalidValue, match="no-such-bucket") as err:
        check_path("data", "s3://no-such-bucket-bindkit/shards")
    assert "\n" not in str(err.value)
    check_path("data", f"s3://{bucket}")  # an existing bucket passes
