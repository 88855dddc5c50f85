"""Source -> validated, parsed record shards, as a Ray Data job that can be resumed.

The source's samples are cut, in order, into shards of ``rows_per_shard`` raw samples, so
shard ``k`` always holds the same samples and is written as ``shards/part-0000k.parquet``
(RECORD_SCHEMA, atomic write) after its ``rejects/part-0000k.jsonl``. A rerun skips every
shard whose Parquet file exists. Pending shards go through Ray Data a window at a time:

    raw samples --validate (tasks)--> record rows + reject_reason
                --parse (actor pool, components.parsing.stage)--> graphs + reject_reason
                --driver: group by shard, sort--> shard file + rejects file

The caller owns ``ray.init``; components never start Ray.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from components.data.ingest import (
    IngestLimits,
    RawSample,
    SourceSpec,
    clean_caption,
    iter_samples,
    validate_sample,
)
from components.data.schema import RECORD_SCHEMA
from components.data.shards import write_shard
from components.parsing.stage import REJECT_COLUMN, ParseStageConfig, parse_dataset, split_rejects

RAW_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("caption", pa.string()),
        ("image", pa.binary()),
        ("error", pa.string()),
        ("detail", pa.string()),
        ("shard", pa.int32()),
        ("position", pa.int32()),
    ]
)


def shard_path(out: Path, shard: int) -> Path:
    return out / "shards" / f"part-{shard:05d}.parquet"


def rejects_path(out: Path, shard: int) -> Path:
    return out / "rejects" / f"part-{shard:05d}.jsonl"


def chunk_shards(
    samples: Iterator[RawSample], rows_per_shard: int
) -> Iterator[tuple[int, list[RawSample]]]:
    """(shard index, its raw samples) in source order."""
    for shard in itertools.count():
        chunk = list(itertools.islice(samples, rows_per_shard))
        if not chunk:
            return
        yield shard, chunk


VALIDATED_SCHEMA = pa.schema(
    [*RECORD_SCHEMA, ("shard", pa.int32()), ("position", pa.int32()),
     (REJECT_COLUMN, pa.string()), ("reject_raw", pa.string())]
)  # fmt: skip


def validate_batch(batch: pa.Table, limits: IngestLimits) -> pa.Table:
    """``map_batches`` function: raw samples -> record rows, bad ones carrying a reason."""
    rows = []
    for raw in batch.to_pylist():
        sample = RawSample(raw["id"], raw["caption"], raw["image"], raw["error"], raw["detail"])
        reason, detail = validate_sample(sample, limits)
        rows.append(
            {
                "id": raw["id"],
                "image": raw["image"] if reason is None else None,
                "caption": clean_caption(raw["caption"]) or raw["caption"],
                "shard": raw["shard"],
                "position": raw["position"],
                REJECT_COLUMN: reason,
                "reject_raw": detail,
            }
        )
    return pa.Table.from_pylist(rows, schema=VALIDATED_SCHEMA)


def _raw_table(shards: list[tuple[int, list[RawSample]]]) -> pa.Table:
    rows = [
        {"id": s.id, "caption": s.caption if isinstance(s.caption, str) else None, "image": s.image,
         "error": s.error, "detail": s.detail, "shard": shard, "position": position}
        for shard, samples in shards
        for position, s in enumerate(samples)
    ]  # fmt: skip
    return pa.Table.from_pylist(rows, schema=RAW_SCHEMA)


def _write_shard_files(out: Path, shard: int, rows: pa.Table) -> tuple[int, Counter]:
    rows = rows.sort_by("position")
    good, rejects = split_rejects(rows)
    path = rejects_path(out, shard)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w") as f:
        for reject in rejects.to_pylist():
            f.write(json.dumps(reject) + "\n")
    tmp.replace(path)
    write_shard(good.drop_columns(["shard", "position"]), shard_path(out, shard))
    return good.num_rows, Counter(rejects.column("reason").to_pylist())


def _finished_counts(out: Path, shard: int) -> tuple[int, Counter]:
    rows = pq.read_metadata(shard_path(out, shard)).num_rows
    reasons: Counter = Counter()
    path = rejects_path(out, shard)
    if path.exists():
        reasons.update(json.loads(line)["reason"] for line in path.read_text().splitlines() if line)
    return rows, reasons


def build_from_source(
    source: SourceSpec,
    out: str | Path,
    parse: ParseStageConfig | None = None,
    limits: IngestLimits | None = None,
    rows_per_shard: int = 1000,
    shards_per_window: int = 8,
    num_blocks: int | None = None,
) -> dict[str, Any]:
    """Build (or finish building) ``out/shards`` and ``out/rejects``; returns the run summary."""
    import ray.data
    from tqdm import tqdm

    out = Path(out)
    parse = parse or ParseStageConfig()
    limits = limits or IngestLimits()
    start = time.perf_counter()
    rows, reasons = 0, Counter()
    written, skipped = [], []

    def flush(window: list[tuple[int, list[RawSample]]]) -> None:
        nonlocal rows
        raw = _raw_table(window)
        blocks = num_blocks or max(1, min(raw.num_rows // 64, 4 * parse.concurrency))
        ds = ray.data.from_arrow(raw).repartition(blocks)
        ds = ds.map_batches(validate_batch, fn_kwargs={"limits": limits}, batch_format="pyarrow")
        ds = parse_dataset(ds, parse)
        table = pa.concat_tables(ray.get(ds.to_arrow_refs()))
        for shard, _ in window:
            n, counts = _write_shard_files(
                out, shard, table.filter(pc.equal(table["shard"], shard))
            )
            rows += n
            reasons.update(counts)
            written.append(shard)

    window: list[tuple[int, list[RawSample]]] = []
    progress = tqdm(desc="shards", unit="shard")
    for shard, samples in chunk_shards(iter_samples(source), rows_per_shard):
        if shard_path(out, shard).exists():
            n, counts = _finished_counts(out, shard)
            rows += n
            reasons.update(counts)
            skipped.append(shard)
            progress.update(1)
            continue
        window.append((shard, samples))
        if len(window) == shards_per_window:
            flush(window)
            progress.update(len(window))
            window = []
    if window:
        flush(window)
        progress.update(len(window))
    progress.close()
    return {
        "rows": rows,
        "rejects": dict(sorted(reasons.items())),
        "shards_written": len(written),
        "shards_skipped": len(skipped),
        "seconds": time.perf_counter() - start,
    }
