"""OC-CLIP vs CLIP training step time at the same backbone and batch, and the share of a
Ray Train step spent waiting for data (streaming + decode + collate).

    python benchmarks/train_step.py [batch=32] [steps=20] [backbone=tiny] [ray_steps=40]

Step times are measured in-process on one thread (ratio in one run: the machine is
shared); the data-wait share comes from the real Ray Train loop on 1 CPU worker.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time

import torch

from components.data.synthetic import SceneRowBuilder, SyntheticSpec
from components.models.registry import create_model
from components.training.loop import TrainConfig
from components.training.optim import build_optimizer
from components.training.trainer import ScalingSettings, fit


def step_seconds(name: str, rows: list[dict], batch: int, steps: int, backbone: str) -> float:
    """Median wall time of collate-free forward + backward + optimiser step."""
    torch.manual_seed(0)
    model = create_model(name, {"name": backbone})
    optimizer = build_optimizer(model, 1e-4, 1e-4, 0.0)
    collated = model.collate(rows[:batch])
    times = []
    for _ in range(steps + 2):
        start = time.perf_counter()
        loss, _ = model.loss(collated)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[2:])


def main(argv: list[str]) -> None:
    options = dict(arg.split("=", 1) for arg in argv)
    batch, steps = int(options.get("batch", 32)), int(options.get("steps", 20))
    backbone, ray_steps = options.get("backbone", "tiny"), int(options.get("ray_steps", 40))
    torch.set_num_threads(1)
    rows = SceneRowBuilder(SyntheticSpec("clevr_pairs", 0, 0.7, 64), "train").table(
        list(range(max(batch, 256)))
    )
    pylist = rows.to_pylist()
    timings = {
        name: step_seconds(name, pylist, batch, steps, backbone) for name in ("clip", "occlip")
    }
    print(f"| model ({backbone}, batch {batch}, 1 thread) | s/step |")
    print("|---|---|")
    for name, seconds in timings.items():
        print(f"| {name} | {seconds:.3f} |")
    print(f"| ratio occlip/clip | {timings['occlip'] / timings['clip']:.2f}x |")

    import ray.data

    from components.runtime import init_ray

    init_ray()
    dataset = ray.data.from_arrow(rows.select(["image", "caption", "graph"]))
    print()
    print(f"| Ray Train loop, 1 CPU worker, {ray_steps} steps | s/step | data wait share |")
    print("|---|---|---|")
    for name in ("clip", "occlip"):
        config = TrainConfig(
            steps=ray_steps,
            batch_size=batch,
            warmup_steps=1,
            checkpoint_every=ray_steps,
            log_every=ray_steps,
        )
        with tempfile.TemporaryDirectory() as storage:
            result = fit(
                {"name": name, "backbone": {"name": backbone}},
                config,
                dataset,
                ScalingSettings(num_workers=1),
                storage,
                f"bench-{name}",
            )
        metrics = result.metrics
        print(
            f"| {name} | {metrics['seconds_per_step']:.3f} | {metrics['data_wait_fraction']:.1%} |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
