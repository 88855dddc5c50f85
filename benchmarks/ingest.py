"""Ingest throughput: Ray Data's readers (the build's reader) vs the former driver-side
reader, on the same 2,000-sample WebDataset, with 1 and 2 CPUs.

    python benchmarks/ingest.py out=DIR [samples=2000] [per_tar=100] [repeats=2]

Both readers end in the same validation ``map_batches`` stage (full image decode) and
are timed from the first read to the last validated row, parse stage excluded (it is the
same for both). ``driver``: the driver unpacks every tar (``iter_samples``) and ships the
rows with ``ray.data.from_arrow``, as ingest did before; ``ray``: tasks read and unpack
the tars (``read_binary_files``, components.data.ingest.read). Each (reader, CPUs) pair
runs in a fresh local Ray instance of that many CPUs; the best of ``repeats`` counts.
Writes DIR/results.json and prints a table with the ratios.
"""

from __future__ import annotations

import components.platform.help_gate  # noqa: F401  (answers --help before torch and Ray load)

# isort: split
import json
import time
from pathlib import Path

from components.data.ingest.base import SourceSpec
from components.data.ingest.build import SplitFractions, validate_batch
from components.data.ingest.demo import write_demo_webdataset
from components.data.ingest.read import raw_table, read_window
from components.data.ingest.sources import iter_samples, list_units
from components.data.ingest.validate import IngestLimits
from components.platform.config import ConfigError

READERS = ("driver", "ray")


def run_once(reader: str, spec: SourceSpec, blocks: int) -> tuple[float, int]:
    """(seconds, validated rows) for one pass of ``reader`` through validation."""
    import ray.data

    start = time.perf_counter()
    units = list_units(spec)
    if reader == "driver":
        table = raw_table([(0, s) for s in iter_samples(spec)])
        ds = ray.data.from_arrow(table).repartition(blocks)
    else:
        ds = read_window(spec, units)
    ds = ds.map_batches(
        validate_batch,
        fn_kwargs={"limits": IngestLimits(), "fractions": SplitFractions()},
        batch_format="pyarrow",
    )
    rows = ds.count()
    return time.perf_counter() - start, rows


def main(argv: list[str]) -> dict:
    options = dict(arg.split("=", 1) for arg in argv)
    if "out" not in options:
        raise ConfigError("out=DIR is required (results.json is written there)")
    out = Path(options["out"])
    samples = int(options.get("samples", 2000))
    per_tar = int(options.get("per_tar", 100))
    repeats = int(options.get("repeats", 2))
    source = write_demo_webdataset(out / "webdataset", samples, per_tar=per_tar)
    spec = SourceSpec("webdataset", str(source))
    import ray

    results: dict = {"samples": samples, "tars": -(-samples // per_tar), "runs": {}}
    for cpus in (1, 2):
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False)
        ray.data.DataContext.get_current().enable_progress_bars = False
        for reader in READERS:
            timings = [run_once(reader, spec, blocks=results["tars"]) for _ in range(repeats)]
            seconds = min(t for t, _ in timings)
            assert all(rows == samples for _, rows in timings), timings
            results["runs"][f"{reader}-{cpus}cpu"] = {
                "reader": reader, "cpus": cpus, "seconds": seconds,
                "samples_per_second": samples / seconds, "all_seconds": [t for t, _ in timings],
            }  # fmt: skip
        ray.shutdown()
    rate = {k: v["samples_per_second"] for k, v in results["runs"].items()}
    results["ratios"] = {
        "ray_over_driver_1cpu": rate["ray-1cpu"] / rate["driver-1cpu"],
        "ray_over_driver_2cpu": rate["ray-2cpu"] / rate["driver-2cpu"],
        "driver_2cpu_over_1cpu": rate["driver-2cpu"] / rate["driver-1cpu"],
        "ray_2cpu_over_1cpu": rate["ray-2cpu"] / rate["ray-1cpu"],
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"| reader | 1 CPU (samples/s) | 2 CPUs (samples/s) | 2/1 |  ({samples} samples)")
    print("|---|---|---|---|")
    for reader in READERS:
        one, two = rate[f"{reader}-1cpu"], rate[f"{reader}-2cpu"]
        print(f"| {reader} | {one:.0f} | {two:.0f} | {two / one:.2f}x |")
    r = results["ratios"]
    print(
        f"| ray / driver | {r['ray_over_driver_1cpu']:.2f}x | {r['ray_over_driver_2cpu']:.2f}x | |"
    )
    print(f"results: {out / 'results.json'}")
    return results


if __name__ == "__main__":
    from components.platform.cli import cli

    cli(main)
