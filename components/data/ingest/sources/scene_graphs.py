"""Gold scene graphs: Visual Genome and GQA, one row per image, no parser needed.

Visual Genome comes in three files, any of which may be given (a file, or a folder that
holds them): ``scene_graphs.json`` (objects with ``names`` and optional ``attributes``;
relationships by ``subject_id``/``object_id``), ``relationships.json`` (subjects and
objects inline, with ``name`` *or* ``names``), and ``attributes.json`` (attributes per
object id, merged into the other two). A file may be the usual list of images or a single
image's element. GQA's ``*_sceneGraphs.json`` maps image ids to ``objects`` keyed by
object id, each with ``relations`` as a list of ``{"name", "object"}``.

An image graph keeps the first ``max_relations`` relations with their two objects (or,
without relations, that many objects), and its caption is realised from the graph
("green tall clock on street, man wears backpack"), so text models see the same facts.
Images are ``<image_id>.jpg`` under ``image_root``.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator
from typing import Any

from components.data.ingest.base import RawSample, SourceSpec, Unit
from components.data.ingest.sources.listed import as_bytes, chunk_units, load_item
from components.platform.storage import expand_paths, parent, read_bytes

VG_FILES = ("scene_graphs", "relationships", "attributes")


def list_units(spec: SourceSpec, rows_per_unit: int) -> list[Unit]:
    files = expand_paths(spec.path, (".json",))
    if spec.kind == "gqa":
        items = [it for f in files for it in _gqa_items(spec, f)]
    else:
        items = _vg_items(spec, files)
    return chunk_units(files[0], sorted(items, key=lambda item: item["id"]), rows_per_unit)


def read_unit(spec: SourceSpec, unit: Unit) -> Iterator[RawSample]:
    for item in unit.items:
        yield load_item(item)


def _name(entry: dict[str, Any]) -> str | None:
    """An object's name from ``name`` or the first of ``names`` (both occur in VG)."""
    name = entry.get("name")
    if not isinstance(name, str):
        names = entry.get("names")
        name = names[0] if isinstance(names, list) and names and isinstance(names[0], str) else None
    return " ".join(name.lower().split()) if name else None


def _attributes(values: Any) -> list[str]:
    if not isinstance(values, list):
        return []
    return [" ".join(v.lower().split()) for v in values if isinstance(v, str) and v.strip()]


def image_graph(
    objects: dict[Any, tuple[str, list[str]]],
    relations: list[tuple[Any, str, Any]],
    max_relations: int,
) -> dict[str, Any] | None:
    """The graph of the first ``max_relations`` usable relations (or objects), or None."""
    index: dict[Any, int] = {}
    graph_objects: list[dict[str, Any]] = []
    graph_relations: list[dict[str, Any]] = []

    def node(key: Any) -> int:
        if key not in index:
            name, attributes = objects[key]
            index[key] = len(graph_objects)
            graph_objects.append({"name": name, "attributes": attributes[:3], "negated": False})
        return index[key]

    for subject, predicate, obj in relations:
        if len(graph_relations) >= max_relations:
            break
        predicate = " ".join(str(predicate).lower().split())
        if subject in objects and obj in objects and subject != obj and predicate:
            graph_relations.append(
                {"subject": node(subject), "predicate": predicate, "object": node(obj)}
            )
    if not graph_relations:
        for key in list(objects)[:max_relations]:
            node(key)
    return {"objects": graph_objects, "relations": graph_relations} if graph_objects else None


def realise(graph: dict[str, Any]) -> str:
    """Caption text of a gold graph: one clause per relation, then unrelated objects."""
    phrases = [" ".join([*o["attributes"], o["name"]]) for o in graph["objects"]]
    used = {i for r in graph["relations"] for i in (r["subject"], r["object"])}
    clauses = [
        f"{phrases[r['subject']]} {r['predicate']} {phrases[r['object']]}"
        for r in graph["relations"]
    ]
    clauses += [p for i, p in enumerate(phrases) if i not in used]
    return ", ".join(clauses)


def _item(prefix: str, image_id: Any, root: str, graph: dict[str, Any] | None) -> dict[str, Any]:
    sample_id = f"{prefix}-{image_id}"
    if graph is None:
        return {
            "id": sample_id,
            "error": "no_objects",
            "detail": "the image graph has no named object",
        }
    return {
        "id": sample_id, "group": sample_id, "caption": as_bytes(realise(graph)),
        "graph": graph, "root": root, "image": f"{image_id}.jpg",
    }  # fmt: skip


def _records(path: str) -> list[Any]:
    data = json.loads(read_bytes(path))
    return data if isinstance(data, list) else [data]


def _add(objects: dict[Any, tuple[str, list[str]]], extra: dict[Any, list[str]], entry: Any) -> Any:
    """Record a VG object (inline or listed) once; its id, or None when it has no name."""
    if not (isinstance(entry, dict) and _name(entry) and "object_id" in entry):
        return None
    attributes = _attributes(entry.get("attributes")) + extra.get(entry["object_id"], [])
    objects.setdefault(entry["object_id"], (_name(entry), list(dict.fromkeys(attributes))))
    return entry["object_id"]


def _vg_items(spec: SourceSpec, files: list[str]) -> list[dict[str, Any]]:
    by_kind: dict[str, list[str]] = {}
    for f in files:
        kind = next((k for k in VG_FILES if posixpath.basename(f).startswith(k)), None)
        if kind is None:
            raise ValueError(
                f"{f}: not a Visual Genome file (expected names starting with {VG_FILES})"
            )
        by_kind.setdefault(kind, []).append(f)
    extra: dict[Any, list[str]] = {}
    for f in by_kind.get("attributes", []):
        for record in _records(f):
            for entry in record.get("attributes", []) if isinstance(record, dict) else []:
                if isinstance(entry, dict) and "object_id" in entry:
                    extra.setdefault(entry["object_id"], []).extend(
                        _attributes(entry.get("attributes"))
                    )
    graphs = by_kind.get("scene_graphs") or by_kind.get("relationships") or []
    if not graphs:
        raise ValueError(f"{spec.path}: no scene_graphs*.json or relationships*.json among {files}")
    items = []
    for f in graphs:
        root = spec.image_root or parent(f)
        for k, record in enumerate(_records(f)):
            if not isinstance(record, dict) or record.get("image_id") is None:
                items.append(
                    {
                        "id": f"vg-{posixpath.basename(f)}[{k}]",
                        "error": "missing_field",
                        "detail": "no image_id",
                    }
                )
                continue
            objects: dict[Any, tuple[str, list[str]]] = {}
            relations: list[tuple[Any, str, Any]] = []

            for entry in record.get("objects") or []:
                _add(objects, extra, entry)
            for rel in record.get("relationships") or []:
                if not isinstance(rel, dict):
                    continue
                subject = (
                    _add(objects, extra, rel["subject"])
                    if "subject" in rel
                    else rel.get("subject_id")
                )
                obj = (
                    _add(objects, extra, rel["object"]) if "object" in rel else rel.get("object_id")
                )
                relations.append((subject, rel.get("predicate") or "", obj))
            items.append(
                _item(
                    "vg",
                    record["image_id"],
                    root,
                    image_graph(objects, relations, spec.max_relations),
                )
            )
    return items


def _gqa_items(spec: SourceSpec, path: str) -> list[dict[str, Any]]:
    data = json.loads(read_bytes(path))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a GQA scene-graph file maps image ids to graphs")
    root = spec.image_root or parent(path)
    items = []
    for image_id, record in data.items():
        raw = record.get("objects") if isinstance(record, dict) else None
        if not isinstance(raw, dict):
            items.append(
                {"id": f"gqa-{image_id}", "error": "missing_field", "detail": "no objects"}
            )
            continue
        objects = {
            key: (_name(o), _attributes(o.get("attributes")))
            for key, o in raw.items()
            if isinstance(o, dict) and _name(o)
        }
        relations = []
        for key, o in raw.items():
            rels = o.get("relations") if isinstance(o, dict) else None
            rels = list(rels.values()) if isinstance(rels, dict) else rels or []
            relations += [
                (key, r.get("name"), r.get("object")) for r in rels if isinstance(r, dict)
            ]
        items.append(
            _item("gqa", image_id, root, image_graph(objects, relations, spec.max_relations))
        )
    return items
