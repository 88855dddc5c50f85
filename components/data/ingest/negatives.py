"""The real-caption negatives stage of build_shards: spaCy token edits of each caption.

A Ray Data actor stage (one spaCy pipeline per actor) after validation and parsing: every
good row gets the hard negatives of ``components.data.real_negatives`` (swap_att,
swap_obj, replace_rel, negation), so NegCLIP and DCSM can train on real data and the
eval split carries hard-negative suites. A row whose graph supports no negative of a kind
keeps its other negatives; the kind is listed in ``negatives_missing`` and counted in the
card, never a reason to drop the row.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pyarrow as pa

from components.data.real_negatives import real_negatives
from components.data.schema import NEGATIVE_TYPE
from components.parsing.spacy.parser import load_spacy
from components.parsing.stage import REJECT_COLUMN

MISSING_COLUMN = "negatives_missing"


class AddRealNegatives:
    """``map_batches`` callable: fills ``negatives`` and ``negatives_missing`` of good rows."""

    def __init__(self, kinds: list[str], model: str | None = None):
        self.nlp = load_spacy(model)
        self.kinds = tuple(kinds)

    def __call__(self, batch: pa.Table) -> pa.Table:
        captions = batch.column("caption").to_pylist()
        todo = [i for i, r in enumerate(batch.column(REJECT_COLUMN).to_pylist()) if r is None]
        negatives: list[list[dict[str, Any]]] = [[] for _ in captions]
        missing: list[list[str]] = [[] for _ in captions]
        for i, doc in zip(todo, self.nlp.pipe([captions[i] for i in todo]), strict=True):
            result = real_negatives(doc, self.kinds)
            negatives[i] = result.negatives
            missing[i] = sorted(result.missing)
        batch = _set(batch, "negatives", pa.array(negatives, type=pa.list_(NEGATIVE_TYPE)))
        return _set(batch, MISSING_COLUMN, pa.array(missing, type=pa.list_(pa.string())))


def _set(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    index = table.schema.get_field_index(name)
    if index >= 0:
        return table.set_column(index, name, values)
    return table.append_column(name, values)


def add_negatives(ds: Any, kinds: list[str], concurrency: int, num_cpus: float) -> Any:
    import ray.data

    return ds.map_batches(
        AddRealNegatives,
        fn_constructor_kwargs={"kinds": list(kinds)},
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=concurrency),
        num_cpus=num_cpus,
    )


def missing_counts(negatives: list[list[dict[str, Any]] | None], kinds: list[str]) -> Counter:
    """Per kind, rows without a negative of that kind (for units written by an earlier run)."""
    counts: Counter = Counter()
    for row in negatives:
        present = {n["kind"] for n in row or []}
        counts.update(k for k in kinds if k not in present)
    return counts
