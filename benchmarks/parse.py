"""Parser throughput: captions/s per core for each parser, and the Ray stage's overhead/scaling.

    python benchmarks/parse.py [num_captions=4000] [batch_size=256]

Rows: template and spaCy parsers in this process (1 core); the Ray Data parse stage with
1 actor against plain ``nlp.pipe`` on the same captions (target >= 0.85x); 2 actors against
1 (target >= 1.8x, needs 2 free cores). Stage times include actor start-up (spaCy load),
so they are also given with that one-off load subtracted.
"""

from __future__ import annotations

import random
import sys
import time

from components.data.grammar import RELATION_PHRASES, CaptionPlan, Clause, MentionedObject, realise

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


def template_parser():
    """The lead's template parser through the registry, or None while it does not exist."""
    try:
        from components.parsing.registry import get_parser

        return get_parser("template")
    except Exception:  # noqa: BLE001 - a missing or unregistered parser skips its row
        return None


def time_stage(texts: list[str], concurrency: int, batch_size: int) -> float:
    import pyarrow as pa
    import ray

    from components.data.schema import RECORD_SCHEMA
    from components.parsing.stage import ParseStageConfig, parse_dataset

    rows = [{"id": str(i), "image": b"", "caption": c} for i, c in enumerate(texts)]
    table = pa.Table.from_pylist(rows, schema=RECORD_SCHEMA)
    blocks = max(4, 4 * concurrency)
    step = -(-table.num_rows // blocks)
    ds = ray.data.from_arrow([table.slice(i, step) for i in range(0, table.num_rows, step)])
    stage = ParseStageConfig("spacy", concurrency=concurrency, batch_size=batch_size)
    start = time.perf_counter()
    refs = parse_dataset(ds, stage).to_arrow_refs()
    parsed = sum(ray.get(ref).num_rows for ref in refs)
    assert parsed == len(texts), (parsed, len(texts))
    return time.perf_counter() - start


def main(argv: list[str]) -> None:
    options = dict(a.split("=", 1) for a in argv)
    n = int(options.get("num_captions", 4000))
    batch_size = int(options.get("batch_size", 256))
    texts = captions(n)

    from components.parsing.spacy_parser import SpacyParser

    start = time.perf_counter()
    spacy_parser = SpacyParser(batch_size=batch_size)
    load_s = time.perf_counter() - start
    spacy_parser.parse_batch(texts[:200])  # warm-up
    rows: list[tuple[str, float, str]] = []
    template = template_parser()
    if template is not None:
        template.parse_batch(texts[:200])
        rows.append(
            ("template (1 core)", rate(n, time_parser(template, texts)), "exact for the grammar")
        )
        from components.parsing.metrics import parse_f1

        sample = texts[:1000]
        scores = parse_f1(spacy_parser.parse_batch(sample), template.parse_batch(sample))
        agreement = ", ".join(f"{k} F1 {v['f1']:.3f}" for k, v in scores.items())
    else:
        rows.append(("template (1 core)", float("nan"), "skipped: no template parser registered"))
    plain = rate(n, time_parser(spacy_parser, texts))
    note = f"model load {load_s:.1f} s"
    if template is not None:
        note += f"; vs template graphs: {agreement}"
    rows.append(("spaCy nlp.pipe (1 core)", plain, note))

    from components.runtime import init_ray

    init_ray()
    one_s = time_stage(texts, 1, batch_size)
    two_s = time_stage(texts, 2, batch_size)
    one, two = rate(n, one_s), rate(n, two_s)
    one_net, two_net = rate(n, one_s - load_s), rate(n, two_s - load_s)
    rows.append(
        (
            "Ray stage, 1 actor",
            one,
            f"{one / plain:.2f}x plain (net of load: {one_net / plain:.2f}x)",
        )
    )
    rows.append(
        (
            "Ray stage, 2 actors",
            two,
            f"{two / one:.2f}x 1 actor (net of load: {two_net / one_net:.2f}x)",
        )
    )

    print(f"\n{n} captions, batch {batch_size}\n")
    print("| parser | captions/s | note |\n|---|---|---|")
    for name, value, note in rows:
        print(f"| {name} | {value:.0f} | {note} |")


if __name__ == "__main__":
    main(sys.argv[1:])
