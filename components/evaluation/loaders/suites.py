"""Public benchmarks named the way training configs name them: ``family[/split]:ROOT``.

``sugarcrepe:/data/sugarcrepe`` is every SugarCrepe split whose files are under that
folder (a family needs at least one); ``sugarcrepe/swap_att:/data/sugarcrepe`` is one
split, whose files must be there. Training pipelines (train_occlip, train_dcsm) end in a
table over these, so real-data training is measured on the published suites; a spec
without ``:`` is not public (a synthetic hard-negative kind) and is left to the caller.
"""

from __future__ import annotations

from pathlib import Path

from components.evaluation.benchmark import Benchmark, BenchmarkFileMissing
from components.evaluation.loaders import benchmark_names, get_benchmark
from components.platform.config import ConfigError


def is_public_suite(spec: str) -> bool:
    return ":" in spec


def parse_public_suite(spec: str) -> tuple[list[str], str, bool]:
    """(benchmark names, root, whether ``spec`` named a whole family); ConfigError if unknown."""
    name, _, root = spec.partition(":")
    if not root:
        raise ConfigError(f"suite {spec!r}: give the folder after ':' (e.g. sugarcrepe:/data/sc)")
    known = benchmark_names()
    if name in known:
        return [name], root, False
    family = [n for n in known if n.split("/")[0] == name]
    if not family:
        families = sorted({n.split("/")[0] for n in known})
        raise ConfigError(f"suite {spec!r}: {name!r} is not one of {families} or {known}")
    return family, root, True


def public_benchmarks(specs: list[str], limit: int = 0) -> list[Benchmark]:
    """Every benchmark the public specs name (``limit`` > 0: its first items only)."""
    benchmarks = []
    for spec in specs:
        names, root, is_family = parse_public_suite(spec)
        found = []
        for name in names:
            try:
                found.append(get_benchmark(name, Path(root)))
            except BenchmarkFileMissing:
                if not is_family:
                    raise
        if not found:
            raise ConfigError(f"suite {spec!r}: no files of {names} under {root}")
        benchmarks += [b.subset(limit) if limit else b for b in found]
    return benchmarks
