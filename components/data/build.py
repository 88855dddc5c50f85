"""The synthetic build as a Ray Data job: shard indices -> rendered Parquet shards.

Each Ray task renders and writes one whole shard under a deterministic name
(``part-00012.parquet``) with an atomic rename. Rebuilding gives identical files, and a
rerun of an interrupted build skips shards already on disk, so nothing is duplicated or
lost. Skipping by file name is only safe because ``out/manifest.json`` (written before the
first shard) must match: a rerun with another seed, coverage, image size or shard size
refuses instead of passing old shards off under a new card. The caller owns ``ray.init``;
components never start Ray.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from components.data.concepts import coverage_split
from components.data.shards import write_shard
from components.data.synthetic import SceneRowBuilder, SyntheticSpec
from components.platform.config import check
from components.platform.outputs import check_manifest, run_lock
from components.platform.storage import child, exists, filesystem_and_path, write_bytes

MANIFEST_FORMAT = 1  # bump when the row layout or rendering changes what a shard holds
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 16, 1024


@dataclass(frozen=True)
class ShardTask:
    split: str
    shard: int
    start: int
    stop: int


def check_synthetic_options(
    world: str, coverage: float, image_size: int, num_scenes: int, rows_per_shard: int = 1
) -> None:
    """Reject values a build cannot honour, before Ray starts (InvalidValue names the key)."""
    from components.data.worlds import DATASETS_DIR, load_world_spec

    try:
        load_world_spec(world)
    except (FileNotFoundError, ValueError):
        known = ", ".join(sorted(p.stem for p in DATASETS_DIR.glob("*.yaml")))
        check(False, "world", world, f"a world name ({known}) or a world spec YAML path")
    check(0.0 < coverage <= 1.0, "coverage", coverage, "a fraction in (0, 1]")
    check(
        MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE,
        "image_size",
        image_size,
        f"pixels in [{MIN_IMAGE_SIZE}, {MAX_IMAGE_SIZE}]",
    )
    check(num_scenes >= 1, "num_scenes", num_scenes, "an integer >= 1")
    check(rows_per_shard >= 1, "rows_per_shard", rows_per_shard, "an integer >= 1")


def build_manifest(spec: SyntheticSpec, num_scenes: int, rows_per_shard: int) -> dict[str, Any]:
    """Everything that decides a synthetic build's bytes (what a resume must match)."""
    return {
        "builder": "build_synthetic",
        "format": MANIFEST_FORMAT,
        "world": spec.world,
        "world_overrides": dict(spec.world_overrides),
        "seed": spec.seed,
        "coverage": spec.coverage,
        "image_size": spec.image_size,
        "num_scenes": num_scenes,
        "rows_per_shard": rows_per_shard,
    }


def plan_shards(split_sizes: dict[str, int], rows_per_shard: int) -> list[ShardTask]:
    tasks = []
    for split, size in split_sizes.items():
        for shard in range(math.ceil(size / rows_per_shard)):
            start = shard * rows_per_shard
            tasks.append(ShardTask(split, shard, start, min(size, start + rows_per_shard)))
    return tasks


def split_sizes(spec: SyntheticSpec, num_scenes: int) -> dict[str, int]:
    """Scenes per split from the world's fractions (largest remainder, sums to num_scenes)."""
    world = spec.build_world()
    fractions = {s.name: s.fraction for s in world.split_specs()}
    total = sum(fractions.values())
    raw = {k: num_scenes * f / total for k, f in fractions.items()}
    sizes = {k: int(math.floor(v)) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: raw[k] - sizes[k], reverse=True)[
        : num_scenes - sum(sizes.values())
    ]:
        sizes[k] += 1
    return sizes


class _ShardWriter:
    """map_batches callable: one builder per split, kept across the shards a worker gets.

    Writes through the filesystem the driver resolved ``out`` to (keys included), so a
    worker without the driver's AWS variables still writes to ``s3://``."""

    def __init__(self, spec: SyntheticSpec, filesystem: pafs.FileSystem, root: str):
        self.spec, self.filesystem, self.root = spec, filesystem, root.rstrip("/")
        self.builders: dict[str, SceneRowBuilder] = {}

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows, skipped = [], []
        for split, shard, start, stop in zip(
            batch["split"], batch["shard"], batch["start"], batch["stop"], strict=True
        ):
            path = f"{self.root}/{split}/part-{int(shard):05d}.parquet"
            if self.filesystem.get_file_info(path).type == pafs.FileType.File:
                skipped.append(True)
                rows.append(pq.read_metadata(path, filesystem=self.filesystem).num_rows)
                continue
            builder = self.builders.get(split) or SceneRowBuilder(self.spec, str(split))
            self.builders[str(split)] = builder
            write_shard(builder.table(list(range(int(start), int(stop)))), path, self.filesystem)
            skipped.append(False)
            rows.append(int(stop) - int(start))
        return {"split": batch["split"], "rows": np.array(rows), "skipped": np.array(skipped)}


def build_synthetic(
    spec: SyntheticSpec,
    num_scenes: int,
    out: str | Path,
    rows_per_shard: int = 200,
    num_cpus_per_task: float = 1.0,
    num_actors: int | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Render every split into ``out/<split>/part-*.parquet`` and write ``out/card.json``.

    ``out`` is a local folder or a URI (``s3://bucket/worlds/clevr``). ``num_actors`` fixes
    the pool size (benchmarks, a shared cluster); None lets Ray Data grow the pool from one
    actor as the cluster's CPUs allow. ``overwrite`` empties an ``out`` built with other
    settings instead of refusing it.
    """
    out = child(out)  # never Path("s3://b/w"): that is the local folder ./s3:/b/w
    with run_lock(out):
        claim_output(spec, num_scenes, out, rows_per_shard, overwrite)
        return _build(spec, num_scenes, out, rows_per_shard, num_cpus_per_task, num_actors)


def claim_output(
    spec: SyntheticSpec,
    num_scenes: int,
    out: str | Path,
    rows_per_shard: int = 200,
    overwrite: bool = False,
) -> bool:
    """Check the options and claim ``out`` for this build (its manifest matched, or written):
    everything in a build that can refuse, so a pipeline runs it before Ray starts or an
    MLflow run opens. True when ``out`` holds an interrupted build of the same settings."""
    check_synthetic_options(spec.world, spec.coverage, spec.image_size, num_scenes, rows_per_shard)
    out = child(out)
    with run_lock(out):
        return check_manifest(out, build_manifest(spec, num_scenes, rows_per_shard), overwrite)


def probe_world(
    root: str | Path, world: str, num_scenes: int, seed: int, image_size: int, splits: dict
) -> str | Path:
    """A full-coverage world for probing, built once under a name that encodes its
    settings, so probe_binding and train_presence (whose backbones it probes) share it."""
    shares = "".join(f"-{k}{v:g}" for k, v in splits.items())
    path = child(root, f"{world}-n{num_scenes}-s{seed}-{image_size}px{shares}")
    if not exists(str(child(path, "card.json"))):  # written last: its absence = unfinished
        overrides = (("splits", dict(splits)),) if splits else ()
        build_synthetic(SyntheticSpec(world, seed, 1.0, image_size, overrides), num_scenes, path)
    return path


def _build(
    spec: SyntheticSpec,
    num_scenes: int,
    out: str | Path,
    rows_per_shard: int,
    num_cpus_per_task: float,
    num_actors: int | None,
) -> dict[str, Any]:
    import ray.data

    sizes = split_sizes(spec, num_scenes)
    tasks = plan_shards(sizes, rows_per_shard)
    started = time.perf_counter()
    items = [asdict(t) for t in tasks]
    filesystem, root = filesystem_and_path(str(out))
    results = (
        ray.data.from_items(items, override_num_blocks=max(1, len(items)))
        .map_batches(
            _ShardWriter,
            fn_constructor_args=(spec, filesystem, root),
            batch_size=1,
            num_cpus=num_cpus_per_task,
            compute=(
                ray.data.ActorPoolStrategy(size=num_actors)
                if num_actors
                else ray.data.ActorPoolStrategy(min_size=1)
            ),
        )
        .take_all()
    )
    seconds = time.perf_counter() - started
    written = sum(int(r["rows"]) for r in results if not r["skipped"])
    card = dataset_card(spec, sizes, out)
    card["build"] = {
        "seconds": seconds,
        "rows_written": written,
        "rows_skipped": sum(int(r["rows"]) for r in results) - written,
        "shards": len(tasks),
    }
    write_bytes(str(child(out, "card.json")), json.dumps(card, indent=2).encode())
    return card


def dataset_card(spec: SyntheticSpec, sizes: dict[str, int], out: str | Path) -> dict[str, Any]:
    """What a reader needs to trust the data: spec, seed, coverage, counts, held-out objects."""
    world = spec.build_world()
    coverage = coverage_split(world.space, spec.coverage, spec.seed)
    negatives: dict[str, dict[str, int]] = {}
    for split in sizes:
        filesystem, folder = filesystem_and_path(str(child(out, split)))
        table = pq.read_table(folder, filesystem=filesystem, columns=["negatives"])
        counts: dict[str, int] = {}
        for row in table.column("negatives").to_pylist():
            for negative in row:
                counts[negative["kind"]] = counts.get(negative["kind"], 0) + 1
        negatives[split] = dict(sorted(counts.items()))
    return {
        "world": world.name,
        "spec": world.spec,
        "seed": spec.seed,
        "coverage": spec.coverage,
        "image_size": spec.image_size,
        "concepts": dict(zip(world.space.names, map(list, world.space.values), strict=True)),
        "num_objects": world.space.num_objects,
        "splits": sizes,
        "split_objects": {s.name: s.objects for s in world.split_specs()},
        "split_roles": {s.name: s.role for s in world.split_specs()},
        "seen_objects": sorted(coverage.seen),
        "heldout_objects": [list(world.values_of(i)) for i in sorted(coverage.heldout)],
        "negatives": negatives,
        **world.card_extras(sizes),
    }
