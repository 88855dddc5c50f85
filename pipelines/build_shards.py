"""Ingest a real image-caption source, parse its captions, and write record shards.

    python pipelines/build_shards.py source.kind=coco source.path=captions.json \
        source.image_root=images/ parse.parser=spacy parse.concurrency=4 out=datasets/coco

Writes out/shards/part-*.parquet (RECORD_SCHEMA), out/rejects/part-*.jsonl (id, caption,
reason), config.yaml, results.json and report.md; a rerun skips finished shards.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from components.config import load_config, to_dict
from components.data.ingest import IngestLimits, SourceSpec
from components.data.ingest_build import build_from_source
from components.data.ingest_demo import write_demo_webdataset
from components.parsing.stage import ParseStageConfig
from components.runtime import init_ray
from components.tracking import log_results, pipeline_run, write_outputs

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "build_shards.yaml"


@dataclass
class BuildShardsConfig:
    source: SourceSpec = field(default_factory=SourceSpec)
    limits: IngestLimits = field(default_factory=IngestLimits)
    parse: ParseStageConfig = field(default_factory=ParseStageConfig)
    rows_per_shard: int = 1000
    shards_per_window: int = 8
    demo_samples: int = 0  # > 0: first write a demo WebDataset of this size to source.path
    out: str = "datasets/ingested"
    experiment: str = "build_shards"


def report(config: BuildShardsConfig, summary: dict) -> str:
    total = summary["rows"] + sum(summary["rejects"].values())
    lines = [
        f"# build_shards: {summary['rows']} rows from {config.source.kind} {config.source.path}",
        "",
        f"parser {config.parse.parser} x{config.parse.concurrency}, {total} samples read, "
        f"{summary['shards_written']} shards written, {summary['shards_skipped']} already done, "
        f"{summary['seconds']:.1f} s",
        "",
        "| reject reason | rows |",
        "|---|---|",
        *[f"| {reason} | {n} |" for reason, n in summary["rejects"].items()],
    ]
    if not summary["rejects"]:
        lines.append("| (none) | 0 |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> dict:
    config = load_config(BuildShardsConfig, argv, DEFAULT_CONFIG)
    if config.demo_samples > 0:
        write_demo_webdataset(config.source.path, config.demo_samples)
    init_ray()
    run_name = f"{config.source.kind}-{config.parse.parser}"
    with pipeline_run(config.experiment, run_name, to_dict(config)):
        summary = build_from_source(
            config.source,
            config.out,
            config.parse,
            config.limits,
            rows_per_shard=config.rows_per_shard,
            shards_per_window=config.shards_per_window,
        )
        results = {"build_shards": {"rows": summary["rows"], "rejects": summary["rejects"]}}
        log_results(results)
        write_outputs(config.out, config, results, report(config, summary))
    print(report(config, summary))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
