"""Parser throughput: captions/s per core for each parser, and the Ray stage's overhead/scaling.

    python benchmarks/parse.py [num_captions=20000] [batch_size=256]

Rows: template and spaCy parsers in this process (1 core); the Ray Data parse stage with
1 actor against plain ``nlp.pipe`` on the same captions (target >= 0.85x); 2 actors against
1 (target >= 1.8x, needs 2 free cores). A stage run pays a fixed start-up (worker process,
imports, spaCy load) that a CC12M-scale job amortises, so each stage is run on half and on
all of the captions: the wall rate includes start-up, the steady rate is the extra captions
over the extra seconds, which cancels it.
"""

from __future__ import annotations

import components.platform.help_gate  # noqa: F401  (answers --help before torch and Ray load)

# isort: split
import random
import sys
import time

from components.data.grammar import CaptionPlan, Clause, MentionedObject, realise
from components.parsing.grammar import RELATION_PHRASES

SIZES, COLOURS = ["small", "large"], ["red", "blue", "green", "yellow", "gray", "purple"]
SHAPES = ["cube", "sphere", "cylinder", "cone"]


def captions(n: int, seed: int = 0) -> list[str]:
    """Synthetic-grammar captions (every parser, the template one too, can read them)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        objects = []
        while len(objects) < 3:
            obj = MentionedObject((rng.choice(SIZES), rng.choice(COLOURS)), rng.choice(SHAPES))
            if obj not in objects:
                objects.append(obj)
        objects[2] = MentionedObject(
            objects[2].attributes, objects[2].name, negated=rng.random() < 0.3
        )
        clauses = [
            Clause(0, rng.choice(list(RELATION_PHRASES)), 1, fronted=rng.random() < 0.2),
            Clause(2),
        ]
        out.append(realise(CaptionPlan(tuple(objects), tuple(clauses)))[0])
    return out


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("nan")


def time_parser(parser, texts: list[str]) -> float:
    start = time.perf_counter()
    parser.parse_batch(texts)
    return time.perf_counter() - start


def time_stage(texts: list[str], concurrency: int, batch_size: int) -> float:
    import pyarrow as pa
    import ray

    from components.data.schema import RECORD_SCHEMA
    from components.parsing.stage import ParseStageConfig, parse_dataset

    rows = [{"id": str(i), "image": b"", "caption": c} for i, c in enumerate(texts)]
    table = pa.Table.from_pylist(rows, schema=RECORD_SCHEMA)
    blocks = 8 * concurrency  # enough blocks that no actor idles at the tail
    step = -(-table.num_rows // blocks)
    ds = ray.data.from_arrow([table.slice(i, step) for i in range(0, table.num_rows, step)])
    stage = ParseStageConfig("spacy", concurrency=concurrency, batch_size=batch_size)
    start = time.perf_counter()
    refs = parse_dataset(ds, stage).to_arrow_refs()
    parsed = sum(ray.get(ref).num_rows for ref in refs)
    assert parsed == len(texts), (parsed, len(texts))
    return time.perf_counter() - start


def stage_rates(texts: list[str], concurrency: int, batch_size: int) -> tuple[float, float]:
    """(wall rate on all captions, steady rate from the half-to-all difference)."""
    half = len(texts) // 2
    half_s = time_stage(texts[:half], concurrency, batch_size)
    all_s = time_stage(texts, concurrency, batch_size)
    return rate(len(texts), all_s), rate(len(texts) - half, all_s - half_s)


def main(argv: list[str]) -> None:
    options = dict(a.split("=", 1) for a in argv)
    n = int(options.get("num_captions", 20000))
    batch_size = int(options.get("batch_size", 256))
    texts = captions(n)

    import ray

    from components.parsing.metrics import parse_f1
    from components.parsing.registry import get_parser
    from components.parsing.spacy.parser import SpacyParser
    from components.platform.runtime import init_ray

    start = time.perf_counter()
    spacy_parser = SpacyParser(batch_size=batch_size)
    load_s = time.perf_counter() - start
    template = get_parser("template")
    sample = texts[:1000]
    scores = parse_f1(spacy_parser.parse_batch(sample), template.parse_batch(sample))
    agreement = ", ".join(f"{k} F1 {v['f1']:.3f}" for k, v in scores.items())
    plain = rate(n, time_parser(spacy_parser, texts))
    rows = [
        ("template (1 core)", rate(n, time_parser(template, texts)), "exact for the grammar"),
        ("spaCy nlp.pipe (1 core)", plain, f"model load {load_s:.1f} s; vs template: {agreement}"),
    ]

    init_ray()
    # The progress bars redraw from the driver, which shares these 2 cores with the actors.
    ray.data.DataContext.get_current().enable_progress_bars = False
    one, one_steady = stage_rates(texts, 1, batch_size)
    two, two_steady = stage_rates(texts, 2, batch_size)
    rows.append(
        (
            "Ray stage, 1 actor",
            one,
            f"{one / plain:.2f}x plain; steady {one_steady:.0f}/s = {one_steady / plain:.2f}x",
        )
    )
    rows.append(
        (
            "Ray stage, 2 actors",
            two,
            f"{two / one:.2f}x 1 actor; steady {two_steady:.0f}/s = {two_steady / one_steady:.2f}x",
        )
    )

    print(f"\n{n} captions, batch {batch_size}\n")
    print("| parser | captions/s | note |\n|---|---|---|")
    for name, value, note in rows:
        print(f"| {name} | {value:.0f} | {note} |")


if __name__ == "__main__":
    main(sys.argv[1:])
