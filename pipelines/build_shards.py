"""Ingest your own images and captions, parse the captions, and write train/val/test shards.

    python pipelines/build_shards.py source.kind=coco source.path=captions.json \
        source.image_root=images/ parse.parser=spacy parse.concurrency=4 out=datasets/coco
    python pipelines/build_shards.py source.kind=webdataset \
        source.path='s3://bucket/cc12m/{00000..01242}.tar' out=s3://bucket/cc12m-shards

Source kinds: webdataset, parquet, files (img2dataset's three formats; HF-datasets
Parquet too), coco, visual_genome, gqa (gold graphs, no parser). Writes out/train, out/val,
out/test (RECORD_SCHEMA shards that train_occlip, train_dcsm, evaluate and probe_binding
read as they are), out/rejects/part-*.jsonl (id, caption, reason), out/card.json,
out/manifest.json, config.yaml, results.json and report.md. A rerun resumes finished
units; a rerun with other settings refuses (or rebuilds with overwrite=true).
"""

from __future__ import annotations

import components.platform.help_gate  # noqa: F401  (answers --help before torch and Ray load)

# isort: split
from dataclasses import dataclass, field
from pathlib import Path

from components.data.ingest.base import SourceSpec
from components.data.ingest.build import SPLITS, SplitFractions, build_from_source, claim_output
from components.data.ingest.demo import write_demo_webdataset
from components.data.ingest.preflight import OWN_DATA, check_out, check_source_path
from components.data.ingest.validate import IngestLimits
from components.data.real_negatives import KINDS as NEGATIVE_KINDS
from components.parsing.registry import PARSERS
from components.parsing.stage import ParseStageConfig
from components.platform.cli import cli, run_pipeline
from components.platform.config import ConfigError, check, to_dict
from components.platform.runtime import init_ray
from components.platform.tracking import log_results, pipeline_run, write_outputs

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "build_shards.yaml"


@dataclass
class BuildShardsConfig:
    source: SourceSpec = field(default_factory=SourceSpec)
    limits: IngestLimits = field(default_factory=IngestLimits)
    parse: ParseStageConfig = field(default_factory=ParseStageConfig)
    splits: SplitFractions = field(default_factory=SplitFractions)  # by a hash of the image
    rows_per_shard: int = 1000  # good rows per output Parquet shard (and per COCO/VG unit)
    shards_per_window: int = 8  # source units read and parsed together before writing
    overwrite: bool = False  # rebuild out= from scratch when its manifest differs
    # Hard-negative kinds made from each caption's own tokens ([] = none): swap_att,
    # swap_obj, replace_rel, negation (components.data.real_negatives)
    negatives: list[str] = field(default_factory=lambda: list(NEGATIVE_KINDS))
    demo_samples: int = 0  # > 0: first write a demo WebDataset of this size to source.path
    out: str = "datasets/ingested"  # output folder: shards, rejects, manifest.json, report
    experiment: str = "build_shards"  # MLflow experiment name

    def validate(self) -> None:
        """Everything that can fail before Ray starts or an MLflow run opens: values, the
        parse stage (a bogus parser otherwise fails inside Ray's actors), and the paths."""
        if not self.source.path:
            raise ConfigError(f"no source: set source.kind and source.path; {OWN_DATA}")
        for key in ("rows_per_shard", "shards_per_window"):
            check(getattr(self, key) > 0, key, getattr(self, key), "a positive integer")
        unknown = sorted(set(self.negatives) - set(NEGATIVE_KINDS))
        check(not unknown, "negatives", unknown, f"kinds among {', '.join(NEGATIVE_KINDS)}")
        parse = self.parse
        check(parse.parser in PARSERS, "parse.parser", parse.parser, f"one of {', '.join(PARSERS)}")
        for key in ("concurrency", "batch_size"):
            value = getattr(parse, key)
            check(value > 0, f"parse.{key}", value, "a positive integer")
        check(parse.num_cpus >= 0, "parse.num_cpus", parse.num_cpus, "a number >= 0")
        if self.demo_samples == 0:  # else the demo is written to source.path first
            check_source_path(self.source.kind, self.source.path)
        check_out(self.out)


def report(config: BuildShardsConfig, summary: dict) -> str:
    rows = sum(summary["rows"].values())
    total = rows + sum(summary["rejects"].values())
    per_split = ", ".join(f"{s} {summary['rows'].get(s, 0)}" for s in SPLITS)
    lines = [
        f"# build_shards: {rows} rows from {config.source.kind} {config.source.path}",
        "",
        f"parser {config.parse.parser} x{config.parse.concurrency}, {total} samples read "
        f"({per_split}), {summary['units_written']} units written, "
        f"{summary['units_skipped']} already done, {summary['seconds']:.1f} s",
        "",
        f"negatives {config.negatives or 'none'}; rows without one, per kind: "
        f"{summary['rows_without_negative'] or 'none'}",
        "",
        "| reject reason | rows |",
        "|---|---|",
        *[f"| {reason} | {n} |" for reason, n in summary["rejects"].items()],
    ]
    if not summary["rejects"]:
        lines.append("| (none) | 0 |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> dict:
    return run_pipeline(BuildShardsConfig, run, argv, DEFAULT_CONFIG)


def run(config: BuildShardsConfig) -> dict:
    if config.demo_samples > 0:
        write_demo_webdataset(config.source.path, config.demo_samples)
    claim_output(  # a mismatched out= refuses here: no Ray, no MLflow run
        config.source,
        config.out,
        config.parse,
        config.limits,
        config.rows_per_shard,
        config.splits,
        list(config.negatives),
        config.overwrite,
    )
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
            splits=config.splits,
            overwrite=False,  # claim_output above already emptied out= if asked to
            negatives=config.negatives,
        )
        results = {"build_shards": {"rows": summary["rows"], "rejects": summary["rejects"]}}
        log_results(results)
        write_outputs(config.out, config, results, report(config, summary))
    print(report(config, summary))
    return results


if __name__ == "__main__":
    cli(main)
