"""Rows of runs side by side, and what one option buys, from their results.json files.

An aid's gain is read from two runs of the same seeds that differ in that option only. Seed
s of both runs shares its data order and initial weights, so the gain is the per-seed
difference, reported as mean +- sd over seeds (an unpaired difference of means would fold
the seed-to-seed spread, which is larger than most gains, into every comparison).

    python -m components.evaluation.compare suites=swap_att,swap_rel base=bindkit
        rows=bindkit:outputs/a:occlip,clip:outputs/b:clip      (rows: name:DIR:MODEL,...)
"""

from __future__ import annotations

import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SPLITS = ("val", "test")  # results.json: "val" holds select_split, the top level eval_split


@dataclass(frozen=True)
class Row:
    """One model of one run: ``name:DIR:MODEL`` on the command line."""

    name: str
    results: dict[str, Any]
    model: str

    def per_seed(self, split: str, suite: str) -> list[float]:
        """One accuracy per seed, in seed order, on ``val`` (selection) or ``test``."""
        summary = self.results["val"] if split == "val" else self.results
        return list(summary["per_seed"][self.model][suite])


def load_row(spec: str) -> Row:
    name, directory, model = spec.split(":")
    path = Path(directory) / "results.json"
    if not path.is_file():
        raise SystemExit(f"{spec}: no {path}")
    results = json.loads(path.read_text())
    if model not in results.get("per_seed", {}):
        raise SystemExit(
            f"{spec}: {path} has no model {model!r} ({', '.join(results['per_seed'])})"
        )
    return Row(name, results, model)


def mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.3f} +- {sd:.3f}"


def paired_gain(row: Row, base: Row, split: str, suite: str) -> list[float]:
    """base minus row, seed by seed: what the option ``row`` lacks buys ``base``."""
    ours, theirs = base.per_seed(split, suite), row.per_seed(split, suite)
    if len(ours) != len(theirs):
        raise SystemExit(f"{row.name} and {base.name} have different seed counts on {suite}")
    return [a - b for a, b in zip(ours, theirs, strict=True)]


def table(rows: list[Row], suites: list[str], base: Row | None) -> list[str]:
    """Markdown: each row's val and test mean +- sd per suite; with ``base``, the paired
    gain base - row on val (where choices are made) and on test."""
    header = [f"{split} {suite}" for split in SPLITS for suite in suites]
    if base is not None:
        header += [f"{base.name} - row, {split} {suite}" for split in SPLITS for suite in suites]
    lines = ["| row | " + " | ".join(header) + " |", "|---" * (len(header) + 1) + "|"]
    for row in rows:
        cells = [mean_sd(row.per_seed(split, suite)) for split in SPLITS for suite in suites]
        if base is not None:
            cells += [
                "-" if row is base else mean_sd(paired_gain(row, base, split, suite))
                for split in SPLITS
                for suite in suites
            ]
        lines.append(f"| {row.name} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str]) -> None:
    options = dict(arg.split("=", 1) for arg in argv if "=" in arg)
    if "rows" not in options or "suites" not in options or len(options) < len(argv):
        raise SystemExit(__doc__)
    rows = [load_row(spec) for spec in options["rows"].split(",")]
    named = {row.name: row for row in rows}
    if options.get("base", "") and options["base"] not in named:
        raise SystemExit(f"base={options['base']} is not a row name ({', '.join(named)})")
    base = named.get(options.get("base", ""))
    print("\n".join(table(rows, options["suites"].split(","), base)))


if __name__ == "__main__":
    main(sys.argv[1:])
