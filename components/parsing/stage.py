"""The parse stage: a Ray Data actor pool that fills ``graph`` on every caption of a record.

``ParseCaptions`` is the ``map_batches`` callable: one parser per actor (a spaCy ``nlp`` or
an LLM loaded once), Arrow batches in and out so the nested struct columns (``graph``,
``negatives``) keep their exact types. It parses the row caption, every negative caption
and every negative's positive caption in one parser call per batch (deduplicated).

A row whose caption cannot be parsed is not dropped: it leaves the stage with a
``reject_reason`` ("empty_caption", "no_objects", "llm_not_json", "parse_error: ValueError",
...), and ``split_rejects`` separates good rows from reject rows (id, caption, reason).

Every row the stage parsed carries its provenance in a ``parser`` string column,
``registry.parser_id``: "spacy:en_core_web_sm-3.8.0+rules9", "llm:MODEL+prompt3",
"template:grammar1+clevr" (null on rows an earlier stage rejected).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from components.parsing.registry import get_parser, parser_id
from components.parsing.scene_graph import SCENE_GRAPH_TYPE, SceneGraph

REJECT_COLUMN = "reject_reason"
PARSER_COLUMN = "parser"  # provenance: registry.parser_id of the parser that made ``graph``
REJECT_SCHEMA = pa.schema(
    [("id", pa.string()), ("caption", pa.string()), ("reason", pa.string()), ("raw", pa.string())]
)


@dataclass
class ParseStageConfig:
    """How the stage runs: which parser, its options, the pool size and batch size."""

    parser: str = "spacy"  # template | spacy | llm (components/parsing/registry.py)
    options: dict[str, Any] = field(default_factory=dict)  # keyword options of the parser class
    concurrency: int = 1  # parser actors (each loads the parser once)
    batch_size: int = 256  # captions per actor call
    num_cpus: float = 1.0  # CPUs reserved per parser actor
    reject_empty: bool = True  # a caption with no object is a reject ("no_objects")


def make_parser(name: str, options: dict[str, Any] | None = None) -> Any:
    """The parser registered under ``name``, built inside the actor that uses it."""
    return get_parser(name, **dict(options or {}))


@dataclass(frozen=True)
class _Outcome:
    graph: SceneGraph | None
    reason: str | None = None
    raw: str | None = None


def parse_captions(parser: Any, captions: list[str], reject_empty: bool = True) -> list[_Outcome]:
    """Parse with ``parse_results`` when the parser reports rejects, else ``parse_batch``."""
    outcomes: list[_Outcome | None] = [None] * len(captions)
    todo = []
    for i, caption in enumerate(captions):
        if caption is None or not str(caption).strip():
            outcomes[i] = _Outcome(None, "empty_caption")
        else:
            todo.append(i)
    texts = [captions[i] for i in todo]
    for i, outcome in zip(todo, _parse_texts(parser, texts), strict=True):
        if outcome.graph is not None and outcome.graph.is_empty and reject_empty:
            outcome = _Outcome(None, "no_objects", outcome.raw)
        outcomes[i] = outcome
    return outcomes  # type: ignore[return-value]


def _parse_texts(parser: Any, texts: list[str]) -> list[_Outcome]:
    if not texts:
        return []
    if hasattr(parser, "parse_results"):
        return [_Outcome(r.graph, r.reason, r.raw) for r in parser.parse_results(texts)]
    try:
        return [_Outcome(g) for g in parser.parse_batch(texts)]
    except Exception:  # noqa: BLE001 - find the culprit captions one by one, below
        pass
    outcomes = []
    for text in texts:
        try:
            outcomes.append(_Outcome(parser.parse_batch([text])[0]))
        except Exception as err:  # noqa: BLE001 - a parser bug on one caption is a reject
            outcomes.append(_Outcome(None, f"parse_error: {type(err).__name__}", str(err)[:500]))
    return outcomes


class ParseCaptions:
    """``map_batches`` callable (Arrow in, Arrow out) holding one parser per actor."""

    def __init__(
        self,
        parser: str = "spacy",
        options: dict[str, Any] | None = None,
        reject_empty: bool = True,
    ):
        self.parser = make_parser(parser, options)
        self.parser_id = parser_id(self.parser)
        self.reject_empty = reject_empty

    def __call__(self, batch: pa.Table) -> pa.Table:
        captions = batch.column("caption").to_pylist()
        # Rows an earlier stage already rejected (a corrupt image) pass through unparsed.
        prior = (
            batch.column(REJECT_COLUMN).to_pylist()
            if REJECT_COLUMN in batch.column_names
            else [None] * len(captions)
        )
        prior_raw = (
            batch.column("reject_raw").to_pylist()
            if "reject_raw" in batch.column_names
            else [None] * len(captions)
        )
        has_negatives = "negatives" in batch.column_names
        negatives = (
            batch.column("negatives").to_pylist() if has_negatives else [None] * len(captions)
        )
        texts = set(c for c, p in zip(captions, prior, strict=True) if c and p is None)
        for row, p in zip(negatives, prior, strict=True):
            if p is not None:
                continue
            for negative in row or []:
                texts.update(
                    t for t in (negative["caption"], negative.get("positive_caption")) if t
                )
        unique = sorted(texts)
        outcome_of = dict(
            zip(unique, parse_captions(self.parser, unique, self.reject_empty), strict=True)
        )
        outcome_of[None] = outcome_of[""] = _Outcome(None, "empty_caption")

        graphs, reasons, raws = [], [], []
        for caption, row, prior_reason, raw in zip(
            captions, negatives, prior, prior_raw, strict=True
        ):
            if prior_reason is not None:
                graphs.append(None)
                reasons.append(prior_reason)
                raws.append(raw)
                continue
            outcome = outcome_of[caption if caption and caption.strip() else None]
            reason, raw = outcome.reason, outcome.raw
            for negative in row or []:
                neg = outcome_of[negative["caption"] or None]
                negative["graph"] = neg.graph.to_dict() if neg.graph else None
                if reason is None and neg.reason is not None:
                    reason, raw = f"negative_{neg.reason}", neg.raw
                if negative.get("positive_caption"):
                    pos = outcome_of[negative["positive_caption"]]
                    negative["positive_graph"] = pos.graph.to_dict() if pos.graph else None
                    if reason is None and pos.reason is not None:
                        reason, raw = f"negative_{pos.reason}", pos.raw
            graphs.append(outcome.graph.to_dict() if outcome.graph else None)
            reasons.append(reason)
            raws.append(raw)

        batch = _set_column(batch, "graph", pa.array(graphs, type=SCENE_GRAPH_TYPE))
        if has_negatives:
            batch = _set_column(
                batch, "negatives", pa.array(negatives, type=batch.schema.field("negatives").type)
            )
        batch = _set_column(batch, REJECT_COLUMN, pa.array(reasons, type=pa.string()))
        parsed_by = [None if p is not None else self.parser_id for p in prior]
        batch = _set_column(batch, PARSER_COLUMN, pa.array(parsed_by, type=pa.string()))
        return _set_column(batch, "reject_raw", pa.array(raws, type=pa.string()))


def _set_column(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), name, values)
    return table.append_column(name, values)


def parse_dataset(ds: Any, config: ParseStageConfig) -> Any:
    """Add the parse stage to a Ray Dataset of records (GPU actors for an LLM when present)."""
    import ray.data

    num_gpus = 0
    if config.parser == "llm":
        import torch

        num_gpus = 1 if torch.cuda.is_available() else 0
    return ds.map_batches(
        ParseCaptions,
        fn_constructor_kwargs={
            "parser": config.parser,
            "options": dict(config.options),
            "reject_empty": config.reject_empty,
        },
        batch_format="pyarrow",
        batch_size=config.batch_size,
        compute=ray.data.ActorPoolStrategy(size=config.concurrency),
        num_cpus=config.num_cpus,
        num_gpus=num_gpus,
    )


def split_rejects(table: pa.Table) -> tuple[pa.Table, pa.Table]:
    """(good rows without the stage's columns, reject rows as id/caption/reason/raw)."""
    rejected = pc.is_valid(table.column(REJECT_COLUMN))
    good = table.filter(pc.invert(rejected)).drop_columns([REJECT_COLUMN, "reject_raw"])
    bad = table.filter(rejected)
    rejects = pa.table(
        {
            "id": bad.column("id"),
            "caption": bad.column("caption"),
            "reason": bad.column(REJECT_COLUMN),
            "raw": bad.column("reject_raw"),
        },
        schema=REJECT_SCHEMA,
    )
    return good, rejects


def count_reasons(rejects: pa.Table) -> dict[str, int]:
    """{reason: rows} of a rejects table, for the run summary and results.json."""
    return dict(sorted(Counter(rejects.column("reason").to_pylist()).items()))
