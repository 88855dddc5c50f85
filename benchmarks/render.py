"""Scene rendering throughput: scenes/s on one core per world and size, and the Ray Data
build with 1 vs 2 actors (ratio, measured in the same run because these machines are noisy).

    python benchmarks/render.py [scenes=60] [build_scenes=400]
"""

from __future__ import annotations

import components.platform.help_gate  # noqa: F401  (answers --help before torch and Ray load)

# isort: split
import sys
import tempfile
import time

from components.data.build import build_synthetic
from components.data.synthetic import SceneRowBuilder, SyntheticSpec


def rows_per_second(world: str, size: int, scenes: int) -> float:
    builder = SceneRowBuilder(SyntheticSpec(world, 0, 0.7, size), "train")
    builder.row(0)  # warm caches (world spec, coverage split)
    start = time.perf_counter()
    for index in range(1, scenes + 1):
        builder.row(index)
    return scenes / (time.perf_counter() - start)


def main(argv: list[str]) -> None:
    options = dict(arg.split("=", 1) for arg in argv)
    scenes = int(options.get("scenes", 60))
    build_scenes = int(options.get("build_scenes", 400))
    print(
        "| world | 64 px | 128 px | 256 px |  (scenes/s, one core, incl. captions, negatives, PNG)"
    )
    print("|---|---|---|---|")
    for world in ("clevr", "clevr_pairs", "colorshape"):
        rates = [rows_per_second(world, size, scenes) for size in (64, 128, 256)]
        print(f"| {world} | " + " | ".join(f"{r:.0f}" for r in rates) + " |")

    from components.platform.runtime import init_ray

    init_ray()
    spec = SyntheticSpec("clevr", 0, 0.7, 64)
    timings = {}
    for actors in (1, 2):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            build_synthetic(spec, build_scenes, out, rows_per_shard=50, num_actors=actors)
            timings[actors] = build_scenes / (time.perf_counter() - start)
    print()
    print("| Ray Data build (clevr, 64 px) | scenes/s |")
    print("|---|---|")
    for actors, rate in timings.items():
        print(f"| {actors} actor(s) | {rate:.0f} |")
    print(f"| ratio 2/1 | {timings[2] / timings[1]:.2f}x |")


if __name__ == "__main__":
    main(sys.argv[1:])
