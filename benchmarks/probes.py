"""Probing at scale: peak memory and fit times for 40k ColorShape images with patch tokens.

    python benchmarks/probes.py [rows=40000] [patches=64] [dim=128] [epochs=1] [families=...]

Features are synthetic (random tokens and codes of the right shapes, the default being the
tiny ViT on 64 px ColorShape: 8x8 patches of width 128) but travel the real way: written in
batches into memory-mapped .npy files as ``extract_features`` does, then read back as
read-only memmaps by the same probes and loops the pipeline uses. Writing and probing run
in separate child processes so each one's peak RSS (ru_maxrss) is its own; tracemalloc
gives the peak of Python-side allocations (NumPy buffers included). The target: probing
stays under 8 GB whatever the feature files weigh.
"""

from __future__ import annotations

import components.platform.help_gate  # noqa: F401  (answers --help before torch and Ray load)

# isort: split
import json
import multiprocessing as mp
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

K_OBJECTS, K_FEATURES = 64, 16
BUDGET_GB = 8.0


def write_features(directory: str, rows: int, patches: int, dim: int, batch: int = 512) -> dict:
    """Stream random features batch by batch into preallocated memmaps (as extraction does)."""
    rng = np.random.default_rng(0)
    out = Path(directory)
    shapes = {
        "cls": ((rows, dim), np.float32),
        "patches": ((rows, patches, dim), np.float16),
        "patch_labels": ((rows, patches), np.int16),
        "object_code": ((rows, K_OBJECTS), np.uint8),
        "feature_code": ((rows, K_FEATURES), np.uint8),
    }
    arrays = {
        name: np.lib.format.open_memmap(out / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)
        for name, (shape, dtype) in shapes.items()
    }
    started = time.perf_counter()
    for start in range(0, rows, batch):
        n = min(batch, rows - start)
        arrays["cls"][start : start + n] = rng.standard_normal((n, dim), dtype=np.float32)
        arrays["patches"][start : start + n] = rng.standard_normal(
            (n, patches, dim), dtype=np.float32
        )
        arrays["patch_labels"][start : start + n] = rng.integers(0, 19, (n, patches))
        objects = rng.random((n, K_OBJECTS)) < 18 / 64
        arrays["object_code"][start : start + n] = objects
        grid = objects.reshape(n, 8, 8)
        arrays["feature_code"][start : start + n] = np.concatenate([grid.any(2), grid.any(1)], 1)
    for array in arrays.values():
        array.flush()
    return {
        "seconds": time.perf_counter() - started,
        "file_gb": sum(a.nbytes for a in arrays.values()) / 1e9,
        "maxrss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
    }


def probe_features(directory: str, families: list[str], epochs: int) -> dict:
    """Fit each family on memmapped splits (80/10/10) and record times and peak memory."""
    import torch

    from components.probes.binding_info import (
        BindingSplit,
        FitConfig,
        ProbeOptions,
        measure_binding,
    )
    from components.probes.extract import TokensWithCLS
    from components.probes.same_object import PairData, measure_same_object

    torch.set_num_threads(2)
    tracemalloc.start()
    arrays = {p.stem: np.load(p, mmap_mode="r") for p in Path(directory).glob("*.npy")}
    rows = len(arrays["cls"])
    cuts = {
        "train": (0, int(0.8 * rows)),
        "val": (int(0.8 * rows), int(0.9 * rows)),
        "test": (int(0.9 * rows), rows),
    }
    entropies = {"H_O": 40.0, "H_O_given_F": 33.0}
    fit = FitConfig(epochs=epochs, lr=1e-3, batch_size=512)
    timings = {}
    for family in families:
        started = time.perf_counter()
        if family.startswith("pair_"):
            splits = {
                s: PairData(arrays["patches"][a:b], arrays["patch_labels"][a:b])
                for s, (a, b) in cuts.items()
            }
            measure_same_object(
                splits,
                family[len("pair_") :],
                policy="all",
                rank=32,
                fit=FitConfig(epochs=epochs, lr=1e-3, batch_size=128),
            )
        else:
            splits = {}
            for s, (a, b) in cuts.items():
                inputs = (
                    TokensWithCLS(arrays["cls"][a:b], arrays["patches"][a:b])
                    if family == "attention"
                    else arrays["cls"][a:b]
                )
                splits[s] = BindingSplit(
                    inputs, arrays["object_code"][a:b], arrays["feature_code"][a:b]
                )
            measure_binding(
                splits,
                family,
                entropies,
                groups=(8, 8),
                options=ProbeOptions(hidden=128, layers=3),
                fit=fit,
            )
        timings[family] = (
            time.perf_counter() - started
        )  # O- and F-probe (or one pair probe), all epochs
    _, traced_peak = tracemalloc.get_traced_memory()
    return {
        "rows": rows,
        "seconds": timings,
        "tracemalloc_peak_gb": traced_peak / 1e9,
        "maxrss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
    }


def _child(target, queue, *args) -> None:
    queue.put(target(*args))


def in_child(target, *args) -> dict:
    """Run in a fresh process so ru_maxrss measures this step alone."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_child, args=(target, queue, *args))
    process.start()
    result = queue.get()
    process.join()
    return result


def main(argv: list[str]) -> None:
    options = dict(arg.split("=", 1) for arg in argv)
    rows = int(options.get("rows", 40000))
    patches, dim = int(options.get("patches", 64)), int(options.get("dim", 128))
    epochs = int(options.get("epochs", 1))
    families = options.get(
        "families", "linear,quadratic,shared_quadratic,dnn,attention,pair_quadratic"
    ).split(",")
    with tempfile.TemporaryDirectory(dir=options.get("dir")) as directory:
        written = in_child(write_features, directory, rows, patches, dim)
        probed = in_child(probe_features, directory, families, epochs)
    print(
        f"{rows} images x {patches} patches x {dim} dims (fp16 patches, fp32 CLS), {epochs} epoch(s)"
    )
    print("| step | seconds | peak RSS (GB) | tracemalloc peak (GB) |")
    print("|---|---|---|---|")
    print(
        f"| stream features to memmap ({written['file_gb']:.2f} GB on disk) | {written['seconds']:.1f} "
        f"| {written['maxrss_gb']:.2f} | - |"
    )
    for family, seconds in probed["seconds"].items():
        what = "pair probe" if family.startswith("pair_") else "O + F probes"
        print(f"| fit {family} ({what}) | {seconds:.1f} | | |")
    print(
        f"| probing, all families | {sum(probed['seconds'].values()):.1f} | {probed['maxrss_gb']:.2f} "
        f"| {probed['tracemalloc_peak_gb']:.3f} |"
    )
    verdict = "under" if probed["maxrss_gb"] < BUDGET_GB else "OVER"
    print(
        f"\npeak RSS while probing: {probed['maxrss_gb']:.2f} GB, {verdict} the {BUDGET_GB:.0f} GB budget"
    )
    print(json.dumps({"write": written, "probe": probed}))


if __name__ == "__main__":
    main(sys.argv[1:])
