"""A cluster in miniature: two Ray nodes on this machine, storage only on the S3 server.

The head and a worker node are separate `ray start` processes with their own temp dirs,
ports and one ``train_slot`` each, so Ray Train puts one worker on each node; token auth
is on. Drivers run as separate processes (tests/cluster_jobs.py), as a submitted job would,
and name nothing but s3:// URIs: no shared local path stands in for shared storage.
One cluster serves the whole module.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from ray_nodes import raylet_pid

from components.platform.local_cluster import LocalCluster, parse_result

DRIVERS = Path(__file__).parent / "cluster_jobs.py"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_nodes(s3_server) -> Iterator[LocalCluster]:
    cluster = LocalCluster({**os.environ, **s3_server.env}, DRIVERS)
    try:
        cluster.add_node()
        cluster.wait_for_nodes(2)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def shards_in_s3(s3_server) -> str:
    """48 training rows as two Parquet shards in a bucket (no local copy is used)."""
    from components.data.shards import write_shard
    from components.data.synthetic import SceneRowBuilder, SyntheticSpec

    bucket = s3_server.bucket("shards")
    builder = SceneRowBuilder(SyntheticSpec("clevr_pairs", 2, 0.7, 64), "train")
    for part in range(2):
        rows = list(range(part * 24, (part + 1) * 24))
        write_shard(builder.table(rows), f"s3://{bucket}/train/part-{part:05d}.parquet")
    return f"s3://{bucket}/train"


def test_training_on_two_nodes_survives_a_lost_node(two_nodes, s3_server, shards_in_s3, tmp_path):
    """Kill the worker node's raylet after the first checkpoint reached S3; start a new
    node; training resumes from S3 and logs every step exactly once."""
    from mlflow.tracking import MlflowClient

    mlflow_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(mlflow_uri)
    run_id = client.create_run(client.create_experiment("cluster")).info.run_id
    bucket = s3_server.bucket("runs")
    driver = two_nodes.driver(
        "train", shards_in_s3, f"s3://{bucket}/ray", "lost-node", "6", mlflow_uri, run_id
    )
    try:
        deadline = time.monotonic() + 600
        snapshot = "ray/lost-node/checkpoint_manager_snapshot.json"
        while not (
            snapshot in s3_server.keys(bucket, "ray/lost-node/")
            and b"step-0000002" in s3_server.read(bucket, snapshot)
        ):  # the controller has registered the first checkpoint (step 2) in S3
            assert driver.poll() is None, driver.stdout.read()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint registered in S3"
            time.sleep(1)
        worker = two_nodes.nodes[-1]
        os.kill(raylet_pid(worker), signal.SIGKILL)  # the node is lost: no cleanup
        worker.wait(timeout=60)
        two_nodes.add_node()  # a replacement node, as an autoscaler would bring
        output, _ = driver.communicate(timeout=500)
    finally:
        if driver.poll() is None:
            driver.kill()
    result = parse_result(driver.returncode, output)
    assert result["metrics"]["step"] == 6
    assert result["metrics"]["start_step"] > 0  # resumed from a checkpoint, not from scratch
    assert result["checkpoint"].endswith("step-0000006")
    assert "ray/lost-node/step-0000006/model.safetensors" in s3_server.keys(bucket, "ray/")
    history = client.get_metric_history(run_id, "loss")
    assert sorted(m.step for m in history) == [2, 4, 6]  # each step once


def test_tune_trials_across_nodes_survive_a_lost_node(two_nodes, s3_server, shards_in_s3, tmp_path):
    """Two trials train at once, one on each node; the worker node dies once both have a
    checkpoint registered in S3 and neither has finished; a new node joins. Both trials
    finish every step, the one that lost its worker resumes from S3, and each trial logs
    every step to MLflow exactly once."""
    from mlflow.tracking import MlflowClient

    bucket = s3_server.bucket("sweep")
    mlflow_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    steps = 12
    last = f"step-{steps:07d}".encode()
    driver = two_nodes.driver("tune", shards_in_s3, f"s3://{bucket}/tune", str(steps), mlflow_uri)
    try:
        deadline = time.monotonic() + 600
        while True:  # both trials' controllers registered a checkpoint, neither the last
            snapshots = [
                s3_server.read(bucket, k) for k in s3_server.keys(bucket, "tune/")
                if k.endswith("/checkpoint_manager_snapshot.json")
            ]  # fmt: skip
            if len(snapshots) == 2 and all(b"step-" in s and last not in s for s in snapshots):
                break
            assert driver.poll() is None, driver.stdout.read()[-3000:]
            assert time.monotonic() < deadline, "the trials registered no checkpoint in S3"
            time.sleep(0.5)
        worker = two_nodes.nodes[-1]
        os.kill(raylet_pid(worker), signal.SIGKILL)
        worker.wait(timeout=60)
        two_nodes.add_node()
        output, _ = driver.communicate(timeout=600)
    finally:
        if driver.poll() is None:
            driver.kill()
    result = parse_result(driver.returncode, output)
    assert result["trials"] == 2 and result["errors"] == 0, result
    assert [r["step"] for r in result["results"]] == [steps, steps]
    assert any(r["start_step"] > 0 for r in result["results"]), result  # one resumed
    keys = s3_server.keys(bucket, "tune/")
    trials = {k.split("/")[1] for k in keys if k.endswith(f"/{last.decode()}/model.safetensors")}
    assert len(trials) == 2, keys  # each trial's Train run checkpointed to the bucket
    assert any(k.startswith("tune/sweep/") for k in keys)  # the experiment state itself
    client = MlflowClient(mlflow_uri)
    for trial in result["results"]:
        logged = sorted(m.step for m in client.get_metric_history(trial["run_id"], "loss"))
        assert logged == list(range(2, steps + 1, 2))  # each step once, the resumed included


def test_build_on_two_nodes_resumes_without_duplicates(two_nodes, tmp_path):
    """One 2-CPU build actor per node; a shard lost after the build is rebuilt alone."""
    out = tmp_path / "world"
    first = two_nodes.run("build", str(out), "60", "2")
    assert first["rows_skipped"] == 0 and first["rows_written"] == 60
    lost = sorted(out.glob("train/part-*.parquet"))[0]
    lost_rows = pq.read_metadata(lost).num_rows
    lost.unlink()
    again = two_nodes.run("build", str(out), "60", "2")
    assert again["rows_written"] == lost_rows  # only the missing shard was rendered
    assert again["rows_skipped"] == 60 - lost_rows
    ids = pq.read_table(out / "train", columns=["id"]).column("id").to_pylist()
    assert len(ids) == len(set(ids))  # no duplicate rows
