"""Scoring a checkpoint on a benchmark: in this process, or sharded over Ray actors.

A large suite is cut into contiguous shards aligned to whole batches, so every actor makes
exactly the ``score`` calls the in-process path would, and the merged result is identical
to a direct `evaluate`. Each actor loads the checkpoint once and keeps the parsers it was
asked for (OC-CLIP reads captions through one).
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import torch
from tqdm.auto import tqdm

from components.evaluation.benchmark import Benchmark
from components.evaluation.metrics import EvalResult, ItemResult, SkippedItem, evaluate
from components.models.checkpoint import load_checkpoint
from components.parsing.registry import get_parser

# Shards per actor: more than one so a slow shard does not leave the other actors idle.
SHARDS_PER_ACTOR = 4

ParserSpec = tuple[str, dict[str, Any]]  # get_parser(name, **options)
# An ItemResult or a SkippedItem without its item: (position in the shard, outcome).
Outcome = tuple[int, tuple[torch.Tensor, bool, bool | None] | tuple[str, str]]


class CheckpointScorer:
    """One checkpoint loaded once, evaluated on any suite; in-process or as a Ray actor."""

    def __init__(self, checkpoint: str, device: str = "cpu", negation: str = "") -> None:
        """``negation`` replaces OC-CLIP's test-time negation rule (``subtract`` | ``ignore``)
        for this evaluation: the rule touches no weight, so its effect is measured on the
        same checkpoint instead of a retrained one. Other models ignore it."""
        self.model = load_checkpoint(checkpoint, map_location=device).eval()
        if negation and "negation" in getattr(self.model, "options", {}):
            self.model.options["negation"] = negation
        self.parsers: dict[str, Any] = {}

    def evaluate(
        self, benchmark: Benchmark, parser: ParserSpec, batch_size: int, progress: bool = True
    ) -> EvalResult:
        """`evaluate` after giving a parsing model (OC-CLIP) the parser this suite needs."""
        if self.parses():
            key = json.dumps(parser, sort_keys=True)
            if key not in self.parsers:
                name, options = parser
                self.parsers[key] = get_parser(name, **options)
            self.model.parser = self.parsers[key]
        return evaluate(self.model, benchmark, batch_size=batch_size, progress=progress)

    def parses(self) -> bool:
        """Whether the model reads captions through a parser (OC-CLIP)."""
        return hasattr(self.model, "parser")

    def outcomes(self, benchmark: Benchmark, parser: ParserSpec, batch_size: int) -> list[Outcome]:
        """Per-item scores or skip reasons of a shard by position; the driver holds the items."""
        result = self.evaluate(benchmark, parser, batch_size, progress=False)
        position = {id(item): k for k, item in enumerate(benchmark.items)}
        scored = [
            (position[id(r.item)], (r.scores, r.text_correct, r.image_correct))
            for r in result.items
        ]
        skipped = [(position[id(s.item)], (s.reason, s.detail)) for s in result.skipped]
        return scored + skipped


def shard_bounds(num_items: int, num_shards: int, batch_size: int) -> list[tuple[int, int]]:
    """Contiguous [start, stop) shards whose sizes are whole batches (but the last)."""
    batches = math.ceil(num_items / batch_size)
    per_shard = math.ceil(batches / max(1, num_shards)) * batch_size
    return [(s, min(s + per_shard, num_items)) for s in range(0, num_items, per_shard)]


def start_scorer_actors(
    checkpoint: str,
    count: int,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    negation: str = "",
) -> list[Any]:
    """``count`` Ray actors, each holding ``checkpoint`` (on CUDA when given GPUs)."""
    import ray

    actor_class = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus)(CheckpointScorer)
    device = "cuda" if num_gpus > 0 else "cpu"
    return [actor_class.remote(checkpoint, device, negation) for _ in range(count)]


def evaluate_on_actors(
    actors: list[Any], benchmark: Benchmark, parser: ParserSpec, batch_size: int, label: str
) -> EvalResult:
    """Score ``benchmark``'s shards on the actors and merge the items back in order."""
    import ray

    bounds = shard_bounds(len(benchmark), len(actors) * SHARDS_PER_ACTOR, batch_size)
    refs = [
        actors[k % len(actors)].outcomes.remote(
            replace(benchmark, items=benchmark.items[start:stop]), parser, batch_size
        )
        for k, (start, stop) in enumerate(bounds)
    ]
    sizes = {ref: stop - start for ref, (start, stop) in zip(refs, bounds, strict=True)}
    pending = list(refs)
    with tqdm(total=len(benchmark), desc=f"{label} on {benchmark.name} (ray)") as bar:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            bar.update(sum(sizes[ref] for ref in done))
    items, skipped = [], []
    for (start, _), shard in zip(bounds, ray.get(refs), strict=True):
        for k, outcome in sorted(shard, key=lambda o: o[0]):
            item = benchmark.items[start + k]
            if len(outcome) == 2:
                skipped.append(SkippedItem(item, *outcome))
            else:
                items.append(ItemResult(item, *outcome))
    return EvalResult(benchmark, label, tuple(items), tuple(skipped))
