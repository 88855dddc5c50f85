"""DCSM throughput: building the dense-feature cache, and a scorer training step on cached
features vs recomputing the frozen backbone every step (the ratio is the point of the cache;
both are measured in the same run because these machines are noisy).

    python benchmarks/dcsm.py [rows=256] [batch_size=8] [steps=20] [backbone=tiny] [image_size=64]

Rows are clevr_pairs scenes (64 px shards, 3 of 4 negatives with a counterfactual image).
"cached" = decode fp16 rows + collate + loss + backward + Adam step; "recompute" = the same
after running the backbone on the batch's images and captions (what the reference does);
"own block" = cached, with ``in_batch_negatives=False`` (each scene scored against its own
caption, hard negative and counterfactual image only).
"""

from __future__ import annotations

import components.platform.help_gate  # noqa: F401  (answers --help before torch and Ray load)

# isort: split
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from components.data.shards import write_shard
from components.data.synthetic import SceneRowBuilder, SyntheticSpec
from components.models.checkpoint import save_checkpoint
from components.models.registry import create_model
from components.training.feature_cache import ShardFeatures, cache_features


def step_seconds(model, optimizer, make_rows, steps: int) -> float:
    """Median seconds of collate + loss + backward + step over ``steps`` batches."""
    times = []
    for _ in range(steps + 1):  # the first is warm-up
        start = time.perf_counter()
        batch = model.collate(make_rows())
        loss, _ = model.loss(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main(argv: list[str]) -> None:
    options = dict(arg.split("=", 1) for arg in argv)
    rows, batch_size = int(options.get("rows", 256)), int(options.get("batch_size", 8))
    steps, name = int(options.get("steps", 20)), options.get("backbone", "tiny")
    image_size = int(options.get("image_size", 64))
    context_length = int(options.get("context_length", 30))
    torch.manual_seed(0)
    model = create_model(
        "dcsm", {"name": name, "image_size": image_size}, context_length=context_length
    )
    table = SceneRowBuilder(SyntheticSpec("clevr_pairs", 0, 0.7, 64), "train").table(
        list(range(rows))
    )
    num_images = rows + sum(
        n["image"] is not None for negs in table.column("negatives").to_pylist() for n in negs
    )

    import ray

    from components.platform.runtime import init_ray

    init_ray()
    with tempfile.TemporaryDirectory() as tmp:
        backbone = {"checkpoint": str(save_checkpoint(model, Path(tmp) / "backbone"))}
        write_shard(table, Path(tmp) / "train" / "part-00000.parquet")
        card = cache_features(
            Path(tmp) / "train", Path(tmp) / "cache", backbone, context_length, batch_size=64
        )
        # In-process, without Ray's actor start-up: the actor's steady-state rate.
        actor = ShardFeatures(backbone, context_length=context_length)
        start = time.perf_counter()
        feature_table = actor(table)
        local_seconds = time.perf_counter() - start
        feature_rows = feature_table.to_pylist()
    ray.shutdown()

    optimizer = torch.optim.Adam(model.head.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)

    def batch_indices() -> list[int]:
        return torch.randperm(rows, generator=generator)[:batch_size].tolist()

    cached = step_seconds(
        model, optimizer, lambda: [feature_rows[i] for i in batch_indices()], steps
    )
    recompute = step_seconds(
        model, optimizer, lambda: actor(table.take(batch_indices())).to_pylist(), steps
    )
    block = create_model(
        "dcsm", model.backbone, context_length=context_length, in_batch_negatives=False
    )
    own_block = step_seconds(
        block,
        torch.optim.Adam(block.head.parameters(), lr=1e-3),
        lambda: [feature_rows[i] for i in batch_indices()],
        steps,
    )
    Ni, Lt = model.map_size
    print(
        f"| feature cache ({name} {image_size} px, Ni={Ni}, Lt={Lt}, {rows} rows, "
        f"{num_images} images) | value |"
    )
    print("|---|---|")
    print(f"| Ray Data job, 1 actor, incl. start-up (rows/s) | {card['rows_per_second']:.1f} |")
    print(f"| in-process ShardFeatures (rows/s) | {rows / local_seconds:.1f} |")
    print(f"| in-process ShardFeatures (images/s) | {num_images / local_seconds:.1f} |")
    print(
        f"| cache size (KiB/row, fp16, all images and texts) | "
        f"{feature_table.nbytes / rows / 1024:.1f} |"
    )
    print()
    print(f"| scorer training step (batch {batch_size} + hard negatives) | ms/step |")
    print("|---|---|")
    print(f"| cached features | {1000 * cached:.1f} |")
    print(f"| recompute backbone every step | {1000 * recompute:.1f} |")
    print(f"| speed-up (recompute / cached) | {recompute / cached:.2f}x |")
    print(f"| cached, own block only | {1000 * own_block:.1f} |")
    print(f"| speed-up (full matrix / own block) | {cached / own_block:.2f}x |")


if __name__ == "__main__":
    main(sys.argv[1:])
