"""Source -> validated, parsed record shards in train/val/test, as a resumable Ray Data job.

The source is cut into units (components.data.ingest.sources: one tar, one Parquet file, one
folder, or a chunk of a JSON file's records). Units go through Ray Data a window at a
time:

    read (Ray Data readers, components.data.ingest.read) -> raw samples
    --validate (map_batches tasks)--> record rows + reject_reason + split
    --parse (actor pool, components.parsing.stage; skipped for gold-graph sources)-->
    --driver: per unit, sorted by id, duplicates rejected--> shard files + rejects file

and unit ``u`` is written as ``<split>/part-<u>-<k>.parquet`` (at most ``rows_per_shard``
rows each) and then ``rejects/part-<u>.jsonl``, which marks the unit done: a rerun skips
done units. The split of a row is a hash of its group key (the image: COCO captions of
one image share a split) against the configured fractions, so adding data never moves an
old row to another split. ``out/manifest.json`` (components.platform.outputs) records everything
that decides the output; a rerun with different settings (another ``rows_per_shard``,
parser, limits or source) refuses with the differing keys instead of mixing old and new
shards, and ``out/card.json`` is written last from what was actually built. A source file
deleted after it was listed is one ``missing_file`` reject naming it (the rest of its
window is read again), so one vanished object never ends the whole job.

The caller owns ``ray.init``; components never start Ray.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from components.data.ingest.base import RawSample, SourceSpec, Unit
from components.data.ingest.negatives import MISSING_COLUMN, add_negatives, missing_counts
from components.data.ingest.read import raw_table, read_window
from components.data.ingest.sources import GOLD_GRAPH_KINDS, list_units, read_unit
from components.data.ingest.validate import (
    IngestLimits,
    caption_text,
    stored_image,
    validate_sample,
)
from components.data.schema import RECORD_SCHEMA
from components.data.shards import write_shard
from components.parsing.stage import REJECT_COLUMN, ParseStageConfig, parse_dataset, split_rejects
from components.platform.config import ConfigError, check
from components.platform.outputs import check_manifest, run_lock
from components.platform.storage import (
    exists,
    expand_paths,
    filesystem_and_path,
    join,
    write_bytes,
)

SPLITS = ("train", "val", "test")
FORMAT_VERSION = 3  # bump when the output layout or row content changes (3: 16-bit scaled)


@dataclass
class SplitFractions:
    """Share of groups (images) in each split; the three must sum to 1."""

    train: float = 0.8  # share of images (with all their captions) in train
    val: float = 0.1  # share in val (model selection)
    test: float = 0.1  # share in test (read once, for the final table)

    def validate(self) -> None:
        values = asdict(self)
        ok = all(v >= 0 for v in values.values()) and abs(sum(values.values()) - 1) < 1e-6
        check(ok, "splits", values, "fractions >= 0 that sum to 1")


def split_of(key: str, fractions: SplitFractions) -> str:
    """The split of a group key: a fixed point in [0, 1) from its SHA-256, so the answer
    never depends on which other rows exist or in what order they are read."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64
    cumulative = 0.0
    for name, share in asdict(fractions).items():
        cumulative += share
        if point < cumulative:
            return name
    return SPLITS[-1]


VALIDATED_SCHEMA = pa.schema(
    [*RECORD_SCHEMA, ("unit", pa.int32()), (REJECT_COLUMN, pa.string()), ("reject_raw", pa.string()),
     (MISSING_COLUMN, pa.list_(pa.string()))]
)  # fmt: skip


def _shown(caption: bytes | None) -> str | None:
    """A caption as it can be shown in a rejects file, undecodable bytes escaped."""
    if caption is None:
        return None
    return caption.decode("utf-8", "backslashreplace").encode("utf-8", "backslashreplace").decode()


def validate_batch(batch: pa.Table, limits: IngestLimits, fractions: SplitFractions) -> pa.Table:
    """``map_batches`` function: raw samples -> record rows, bad ones carrying a reason."""
    rows = []
    for raw in batch.to_pylist():
        sample = RawSample(raw["id"], raw["caption"], raw["image"], raw["error"], raw["detail"])
        reason, detail = validate_sample(sample, limits)
        good = reason is None
        rows.append(
            {
                "id": raw["id"],
                "image": stored_image(raw["image"]) if good else None,
                "caption": caption_text(raw["caption"])[0] if good else _shown(raw["caption"]),
                "graph": raw["graph"] if good else None,
                "split": split_of(raw["group"], fractions),
                "unit": raw["unit"],
                REJECT_COLUMN: reason,
                "reject_raw": detail,
                MISSING_COLUMN: [],
            }
        )
    return pa.Table.from_pylist(rows, schema=VALIDATED_SCHEMA)


def source_fingerprint(source: SourceSpec) -> str:
    """SHA-256 over the source's file names and sizes (cheap: one listing, no reads)."""
    files = expand_paths(source.path)
    fs, _ = filesystem_and_path(files[0])
    infos = fs.get_file_info([filesystem_and_path(f)[1] for f in files])
    digest = hashlib.sha256()
    for name, info in zip(files, infos, strict=True):
        digest.update(f"{name}\t{info.size}\n".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def claim_output(
    source: SourceSpec,
    out: str,
    parse: ParseStageConfig,
    limits: IngestLimits,
    rows_per_shard: int,
    fractions: SplitFractions,
    negatives: list[str],
    overwrite: bool = False,
) -> bool:
    """Claim ``out`` for this build (its manifest matched, or written) before Ray starts or
    an MLflow run opens, so a refused rerun costs nothing; True when resuming a match."""
    manifest = build_manifest(source, parse, limits, rows_per_shard, fractions, negatives)
    with run_lock(out):
        return check_manifest(out, manifest, overwrite)


def build_manifest(
    source: SourceSpec,
    parse: ParseStageConfig,
    limits: IngestLimits,
    rows_per_shard: int,
    fractions: SplitFractions,
    negatives: list[str],
) -> dict[str, Any]:
    """What decides the output's content (not how fast it is made: no pool sizes)."""
    gold = source.kind in GOLD_GRAPH_KINDS
    return {
        "builder": "build_shards",
        "format": FORMAT_VERSION,
        "source": asdict(source),
        "source_fingerprint": source_fingerprint(source),
        "limits": asdict(limits),
        "parser": "gold" if gold else parse.parser,
        "parser_options": {} if gold else dict(parse.options),
        "reject_empty": parse.reject_empty,
        "rows_per_shard": rows_per_shard,
        "splits": asdict(fractions),
        "negatives": list(negatives),
    }


def _listing(out: str, folder: str) -> list[str]:
    fs, inner = filesystem_and_path(join(out, folder))
    selector = pafs.FileSelector(inner, allow_not_found=True)
    return sorted(i.base_name for i in fs.get_file_info(selector) if i.type == pafs.FileType.File)


def _unit_of(name: str) -> int:
    return int(name.split("-")[1].split(".")[0])


class _Progress:
    """Counts and seen ids of everything written so far, resumed units included."""

    def __init__(self, out: str, negatives: Sequence[str] = ()):
        self.out = out
        self.rows: Counter = Counter()
        self.reasons: Counter = Counter()
        self.missing: Counter = Counter()  # rows per negative kind they have none of
        self.seen: set[str] = set()
        self.done = {_unit_of(n) for n in _listing(out, "rejects") if n.endswith(".jsonl")}
        for split in SPLITS:
            for name in _listing(out, split):
                if name.endswith(".parquet") and _unit_of(name) in self.done:
                    fs, inner = filesystem_and_path(join(out, split, name))
                    done = pq.read_table(inner, columns=["id", "negatives"], filesystem=fs)
                    self.rows[split] += done.num_rows
                    self.seen.update(done.column("id").to_pylist())
                    self.missing += missing_counts(done.column("negatives").to_pylist(), negatives)
        for name in [n for n in _listing(out, "rejects") if n.endswith(".jsonl")]:
            fs, inner = filesystem_and_path(join(out, "rejects", name))
            with fs.open_input_stream(inner) as stream:
                lines = stream.read().decode().splitlines()
            self.reasons.update(json.loads(line)["reason"] for line in lines if line)

    def write_unit(self, unit: int, rows: pa.Table, rows_per_shard: int) -> None:
        """Write one unit's splits, then its rejects file (the unit's done marker)."""
        good, rejects = split_rejects(rows.sort_by("id"))
        duplicate = []
        for sample_id in good.column("id").to_pylist():
            duplicate.append(sample_id in self.seen)
            self.seen.add(sample_id)
        duplicate_mask = pa.array(duplicate, type=pa.bool_())
        dupes = good.filter(duplicate_mask)
        good = good.filter(pc.invert(duplicate_mask))
        self.missing.update(k for kinds in good.column(MISSING_COLUMN).to_pylist() for k in kinds)
        for split in SPLITS:
            part = good.filter(pc.equal(good.column("split"), split)).drop_columns(["unit"])
            for k, start in enumerate(range(0, part.num_rows, rows_per_shard)):
                chunk = part.slice(start, rows_per_shard)
                write_shard(chunk, join(self.out, split, f"part-{unit:05d}-{k:03d}.parquet"))
            self.rows[split] += part.num_rows
        lines = [json.dumps(r) for r in rejects.to_pylist()]
        lines += [
            json.dumps({"id": i, "caption": c, "reason": "duplicate_id", "raw": "id seen before"})
            for i, c in zip(
                dupes.column("id").to_pylist(), dupes.column("caption").to_pylist(), strict=True
            )
        ]
        self.reasons.update(json.loads(line)["reason"] for line in lines)
        write_bytes(
            join(self.out, "rejects", f"part-{unit:05d}.jsonl"),
            "".join(f"{x}\n" for x in lines).encode(),
        )


def _check(rows_per_shard: int, shards_per_window: int, fractions: SplitFractions) -> None:
    for key, value in (
        ("rows_per_shard", rows_per_shard),
        ("shards_per_window", shards_per_window),
    ):
        if value <= 0:
            raise ConfigError(f"{key}={value}: must be a positive integer")
    fractions.validate()


def build_from_source(
    source: SourceSpec,
    out: str | Path,
    parse: ParseStageConfig | None = None,
    limits: IngestLimits | None = None,
    rows_per_shard: int = 1000,
    shards_per_window: int = 8,
    splits: SplitFractions | None = None,
    overwrite: bool = False,
    negatives: Sequence[str] = (),
) -> dict[str, Any]:
    """Build (or finish building) ``out/{train,val,test}``, ``out/rejects`` and
    ``out/card.json``; returns the run summary. ``negatives``: the real-caption negative
    kinds to add (components.data.real_negatives), none by default."""
    out = str(out)
    parse = parse or ParseStageConfig()
    limits = limits or IngestLimits()
    splits = splits or SplitFractions()
    _check(rows_per_shard, shards_per_window, splits)
    start = time.perf_counter()
    manifest = build_manifest(source, parse, limits, rows_per_shard, splits, list(negatives))
    units = list_units(source, rows_per_shard)
    with run_lock(out):
        check_manifest(out, manifest, overwrite)
        progress = _Progress(out, list(negatives))
        pending = [u for u in units if u.index not in progress.done]
        for first in range(0, len(pending), shards_per_window):
            window = pending[first : first + shards_per_window]
            table = _read_window(source, window, parse, limits, splits, list(negatives))
            for unit in window:
                rows = table.filter(pc.equal(table.column("unit"), unit.index))
                progress.write_unit(unit.index, rows, rows_per_shard)
        summary = {
            "rows": {s: progress.rows[s] for s in SPLITS},
            "rejects": dict(sorted(progress.reasons.items())),
            "rows_without_negative": dict(sorted(progress.missing.items())),
            "units_written": len(pending),
            "units_skipped": len(units) - len(pending),
            "seconds": time.perf_counter() - start,
        }
        card = {
            "kind": "ingested",
            "source": {"kind": source.kind, "path": source.path},
            "source_fingerprint": manifest["source_fingerprint"],
            "parser": manifest["parser"],
            "splits": summary["rows"],
            "split_fractions": asdict(splits),
            "samples_read": sum(progress.rows.values()) + sum(progress.reasons.values()),
            "rejects": summary["rejects"],
            "negatives": {
                "kinds": list(negatives),
                "rows_without": summary["rows_without_negative"],
            },
            "manifest": "manifest.json",
        }
        write_bytes(join(out, "card.json"), json.dumps(card, indent=2).encode())
    return summary


def _read_window(
    source: SourceSpec,
    window: list[Unit],
    parse: ParseStageConfig,
    limits: IngestLimits,
    splits: SplitFractions,
    negatives: list[str],
) -> pa.Table:
    """`_run_window`, surviving source files deleted after they were listed.

    Ray's readers fail the whole window when one of its tars or Parquet files is gone (as
    FileNotFoundError, or wrapped in Ray's own errors). When the window fails and some of
    its files no longer exist, each is read here by its kind's own reader, which makes it
    one ``missing_file`` reject naming it, and the rest of the window is read again; a
    failure with every file present is re-raised.
    """
    try:
        return _run_window(source, window, parse, limits, splits, negatives)
    except Exception:
        # Listed kinds (items) read per item and reject a missing file themselves.
        gone = [u for u in window if u.reject is None and not u.items and not exists(u.path)]
        if not gone:
            raise
    samples = [(u.index, sample) for u in gone for sample in read_unit(source, u)]
    vanished = validate_batch(raw_table(samples), limits, splits)
    rest = [u for u in window if u.index not in {g.index for g in gone}]
    if not rest:
        return vanished
    return pa.concat_tables(
        [_read_window(source, rest, parse, limits, splits, negatives), vanished]
    )


def _run_window(
    source: SourceSpec,
    window: list[Unit],
    parse: ParseStageConfig,
    limits: IngestLimits,
    splits: SplitFractions,
    negatives: list[str],
) -> pa.Table:
    import ray

    ds = read_window(source, window).map_batches(
        validate_batch, fn_kwargs={"limits": limits, "fractions": splits}, batch_format="pyarrow"
    )
    if source.kind not in GOLD_GRAPH_KINDS:
        ds = parse_dataset(ds, parse)
    if negatives:
        ds = add_negatives(ds, negatives, parse.concurrency, parse.num_cpus)
    tables = [t for t in ray.get(ds.to_arrow_refs()) if t.num_rows]
    if not tables:
        return VALIDATED_SCHEMA.empty_table()
    return pa.concat_tables(
        [t.select(VALIDATED_SCHEMA.names).cast(VALIDATED_SCHEMA) for t in tables]
    )
