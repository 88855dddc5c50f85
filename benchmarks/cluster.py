"""Build and training throughput on 1 vs 2 local Ray nodes (infra/README.md, section 3).

    python benchmarks/cluster.py out=DIR [scenes=200] [steps=12]

Each case starts its own cluster (components/platform/local_cluster.py: token auth, 2 logical
CPUs and one ``train_slot`` per node) and an S3 server for the training data and Ray storage
(components/platform/local_s3.py); the jobs are tests/cluster_jobs.py's driver programs:
- build: ``build_synthetic`` of ``scenes`` scenes with one 2-CPU actor per node (scenes/s);
- train: CLIP-tiny, batch 8 per worker, one Ray Train worker per node, shards and
  checkpoints on S3; samples/s = workers x batch / Ray's mean seconds_per_step.
Writes DIR/results.json and prints a table. On one machine the "nodes" share its cores:
the ratio measures Ray's placement and overheads here, not what a second machine would add.
"""

from __future__ import annotations

import components.platform.help_gate  # noqa: F401  (answers --help before torch and Ray load)

# isort: split
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from components.platform.local_cluster import LocalCluster
from components.platform.local_s3 import running_s3_server

BATCH = 8
DRIVERS = Path(__file__).resolve().parents[1] / "tests" / "cluster_jobs.py"  # run, not imported


def _upload_shards(bucket: str) -> str:
    from components.data.shards import write_shard
    from components.data.synthetic import SceneRowBuilder, SyntheticSpec

    builder = SceneRowBuilder(SyntheticSpec("clevr_pairs", 2, 0.7, 64), "train")
    for part in range(2):
        rows = list(range(part * 32, (part + 1) * 32))
        write_shard(builder.table(rows), f"s3://{bucket}/train/part-{part:05d}.parquet")
    return f"s3://{bucket}/train"


def measure(nodes: int, data: str, bucket: str, scenes: int, steps: int) -> dict:
    cluster = LocalCluster(dict(os.environ), DRIVERS)
    try:
        for _ in range(nodes - 1):
            cluster.add_node()
        cluster.wait_for_nodes(nodes)
        with tempfile.TemporaryDirectory() as out:
            build = cluster.run("build", f"{out}/world", str(scenes), str(nodes))
        train = cluster.run(
            "train", data, f"s3://{bucket}/ray{nodes}", "bench", str(steps), "", "", str(nodes)
        )
    finally:
        cluster.stop()
    seconds_per_step = train["metrics"]["seconds_per_step"]
    return {
        "build_scenes_per_s": build["rows_written"] / build["seconds"],
        "build_seconds": build["seconds"],
        "train_samples_per_s": nodes * BATCH / seconds_per_step,
        "train_seconds_per_step": seconds_per_step,
        "train_wall_seconds": train["seconds"],
    }


def main(argv: list[str]) -> dict:
    options = dict(arg.split("=", 1) for arg in argv)
    out = Path(options["out"])
    scenes, steps = int(options.get("scenes", 200)), int(options.get("steps", 12))
    with running_s3_server() as server:
        bucket = server.bucket("bench")
        data = _upload_shards(bucket)
        started, load = time.time(), os.getloadavg()[0]
        results = {n: measure(n, data, bucket, scenes, steps) for n in (1, 2)}
    summary = {
        "nodes": results,
        "build_ratio_2v1": results[2]["build_scenes_per_s"] / results[1]["build_scenes_per_s"],
        "train_ratio_2v1": results[2]["train_samples_per_s"] / results[1]["train_samples_per_s"],
        "scenes": scenes,
        "steps": steps,
        "batch_per_worker": BATCH,
        "cpus": os.cpu_count(),
        "load_average_1min_at_start": load,
        "wall_seconds": time.time() - started,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    print_table(summary)
    return summary


def print_table(summary: dict) -> None:
    one, two = summary["nodes"][1], summary["nodes"][2]
    print("| | 1 node | 2 nodes | 2 / 1 |\n|---|---|---|---|")
    print(
        f"| build (scenes/s) | {one['build_scenes_per_s']:.1f} | "
        f"{two['build_scenes_per_s']:.1f} | {summary['build_ratio_2v1']:.2f}x |"
    )
    print(
        f"| training (samples/s) | {one['train_samples_per_s']:.1f} | "
        f"{two['train_samples_per_s']:.1f} | {summary['train_ratio_2v1']:.2f}x |"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
