"""The Ray Data parse stage: graphs on captions and negatives, rejects counted not dropped."""

from __future__ import annotations

import pyarrow as pa
import pytest

from components.data.schema import RECORD_SCHEMA
from components.parsing.scene_graph import SceneGraph
from components.parsing.stage import ParseCaptions, ParseStageConfig, count_reasons, split_rejects


def records(rows: list[dict]) -> pa.Table:
    """Record rows with only id, caption and negatives set (image a placeholder)."""
    full = [
        {
            "id": r["id"],
            "image": b"\x89PNG",
            "caption": r["caption"],
            "negatives": r.get("negatives"),
        }
        for r in rows
    ]
    return pa.Table.from_pylist(full, schema=RECORD_SCHEMA)


ROWS = [
    {
        "id": "r0",
        "caption": "a white cat on a red sofa",
        "negatives": [
            {"kind": "swap_att", "caption": "a red cat on a white sofa"},
            {
                "kind": "negation",
                "caption": "a cube and no sphere",
                "positive_caption": "a sphere and no cube",
            },
        ],
    },
    {"id": "r1", "caption": "   "},
    {"id": "r2", "caption": "quickly and slowly"},
    {"id": "r3", "caption": "two dogs next to a bench"},
]


@pytest.fixture(scope="module")
def stage():
    try:
        return ParseCaptions("spacy")
    except OSError as err:
        pytest.skip(f"no spaCy English pipeline installed: {err}")


def test_stage_fills_row_negative_and_positive_graphs(stage):
    good, _ = split_rejects(stage(records(ROWS)))
    row = good.to_pylist()[0]
    assert SceneGraph.from_dict(row["graph"]).triples() == [("white cat", "on", "red sofa")]
    swap, negation = row["negatives"]
    assert SceneGraph.from_dict(swap["graph"]).triples() == [("red cat", "on", "white sofa")]
    assert [o["negated"] for o in negation["graph"]["objects"]] == [False, True]
    assert [o["negated"] for o in negation["positive_graph"]["objects"]] == [False, True]
    assert good.drop_columns(["parser"]).schema.equals(RECORD_SCHEMA)


def test_every_parsed_row_records_the_parser_name_and_version(stage):
    out = stage(records(ROWS))
    version = stage.parser.version
    assert version.startswith(stage.parser.nlp.meta["lang"] + "_" + stage.parser.nlp.meta["name"])
    assert out.column("parser").to_pylist() == [f"spacy:{version}"] * 4
    good, rejects = split_rejects(out)
    assert set(good.column("parser").to_pylist()) == {f"spacy:{version}"}


def test_unparseable_rows_become_rejects_with_reasons(stage):
    good, rejects = split_rejects(stage(records(ROWS)))
    assert good.column("id").to_pylist() == ["r0", "r3"]
    assert rejects.column("id").to_pylist() == ["r1", "r2"]
    assert count_reasons(rejects) == {"empty_caption": 1, "no_objects": 1}


def test_a_failing_parser_call_is_pinned_to_its_caption():
    from components.parsing.stage import parse_captions

    class Fragile:
        def parse_batch(self, captions):
            if "boom" in captions:
                raise RuntimeError("parser crashed")
            return [SceneGraph.build([(c, [])]) for c in captions]

    outcomes = parse_captions(Fragile(), ["cat", "boom", ""])
    assert [o.reason for o in outcomes] == [None, "parse_error: RuntimeError", "empty_caption"]


def test_actor_pool_stage_parses_every_row_once_and_counts_rejects(ray_cluster):
    pytest.importorskip("spacy")
    from components.parsing.stage import parse_dataset

    ray = ray_cluster
    table = records(ROWS * 3)  # 12 rows in 3 blocks, batches of 4
    ds = ray.data.from_arrow([table.slice(0, 4), table.slice(4, 4), table.slice(8, 4)])
    parsed = parse_dataset(
        ds, ParseStageConfig(parser="spacy", concurrency=1, batch_size=4, num_cpus=0.5)
    )
    out = pa.concat_tables([ray.get(ref) for ref in parsed.to_arrow_refs()])
    good, rejects = split_rejects(out)
    assert sorted(good.column("id").to_pylist()) == ["r0"] * 3 + ["r3"] * 3
    assert count_reasons(rejects) == {"empty_caption": 3, "no_objects": 3}
