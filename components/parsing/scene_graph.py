"""SceneGraph: the one structure every parser emits and OC-CLIP consumes.

Objects carry their attributes (OC-CLIP nodes are "red cube", not "cube" + "red");
relations index objects. An object may be marked ``negated`` ("a cube and no sphere"),
so a parser can record absence without pretending the object is present.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa


class SceneGraphError(ValueError):
    """Malformed scene-graph input; the message names the offending field."""


@dataclass(frozen=True)
class SceneObject:
    name: str
    attributes: tuple[str, ...] = ()
    negated: bool = False

    def phrase(self) -> str:
        """The node phrase OC-CLIP's text encoder embeds: attributes then name."""
        return " ".join([*self.attributes, self.name])


@dataclass(frozen=True)
class Relation:
    subject: int
    predicate: str
    object: int


@dataclass(frozen=True)
class SceneGraph:
    objects: tuple[SceneObject, ...] = ()
    relations: tuple[Relation, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for i, obj in enumerate(self.objects):
            if not obj.name or not obj.name.strip():
                raise SceneGraphError(f"objects[{i}].name is empty")
            for j, attribute in enumerate(obj.attributes):
                if not attribute or not attribute.strip():
                    raise SceneGraphError(f"objects[{i}].attributes[{j}] is empty")
        n = len(self.objects)
        for k, rel in enumerate(self.relations):
            for role in ("subject", "object"):
                index = getattr(rel, role)
                if not isinstance(index, int) or not 0 <= index < n:
                    raise SceneGraphError(
                        f"relations[{k}].{role}={index!r} is not an object index in [0, {n})"
                    )
            if not rel.predicate or not rel.predicate.strip():
                raise SceneGraphError(f"relations[{k}].predicate is empty")

    # -- constructors -----------------------------------------------------------------
    @classmethod
    def build(
        cls,
        objects: list[tuple[str, list[str]] | tuple[str, list[str], bool]],
        relations: list[tuple[int, str, int]] = (),
    ) -> SceneGraph:
        """Terse constructor for code and tests: objects as (name, attrs[, negated])."""
        objs = tuple(
            SceneObject(o[0], tuple(o[1]), bool(o[2]) if len(o) > 2 else False) for o in objects
        )
        rels = tuple(Relation(s, p, o) for s, p, o in relations)
        return cls(objs, rels)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SceneGraph:
        """Validate and build from the JSON/Arrow form; errors name the field at fault."""
        if not isinstance(data, dict):
            raise SceneGraphError(f"scene graph must be a dict, got {type(data).__name__}")
        raw_objects = data.get("objects", [])
        raw_relations = data.get("relations", [])
        if not isinstance(raw_objects, list):
            raise SceneGraphError("objects must be a list")
        if not isinstance(raw_relations, list):
            raise SceneGraphError("relations must be a list")
        objects = []
        for i, raw in enumerate(raw_objects):
            if not isinstance(raw, dict):
                raise SceneGraphError(f"objects[{i}] must be a dict with name and attributes")
            name = raw.get("name")
            if not isinstance(name, str):
                raise SceneGraphError(f"objects[{i}].name must be a string, got {name!r}")
            attributes = raw.get("attributes") or []
            if not isinstance(attributes, list | tuple) or not all(
                isinstance(a, str) for a in attributes
            ):
                raise SceneGraphError(f"objects[{i}].attributes must be a list of strings")
            negated = raw.get("negated")
            if negated is not None and not isinstance(negated, bool):
                # "false" (a string) must not read as True: only JSON true/false is a flag.
                raise SceneGraphError(
                    f"objects[{i}].negated must be true or false, got {negated!r}"
                )
            objects.append(SceneObject(name, tuple(attributes), bool(negated)))
        relations = []
        for k, raw in enumerate(raw_relations):
            if not isinstance(raw, dict):
                raise SceneGraphError(f"relations[{k}] must be a dict")
            for key in ("subject", "predicate", "object"):
                if key not in raw:
                    raise SceneGraphError(f"relations[{k}].{key} is missing")
            if not isinstance(raw["predicate"], str):
                raise SceneGraphError(f"relations[{k}].predicate must be a string")
            for key in ("subject", "object"):
                if isinstance(raw[key], bool) or not isinstance(raw[key], int):
                    raise SceneGraphError(f"relations[{k}].{key} must be an int")
            relations.append(Relation(raw["subject"], raw["predicate"], raw["object"]))
        return cls(tuple(objects), tuple(relations))

    @classmethod
    def from_json(cls, text: str) -> SceneGraph:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise SceneGraphError(f"scene graph is not valid JSON: {err}") from err
        return cls.from_dict(data)

    # -- views ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "objects": [
                {"name": o.name, "attributes": list(o.attributes), "negated": o.negated}
                for o in self.objects
            ],
            "relations": [
                {"subject": r.subject, "predicate": r.predicate, "object": r.object}
                for r in self.relations
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    def node_phrases(self) -> list[str]:
        return [o.phrase() for o in self.objects]

    def triples(self) -> list[tuple[str, str, str]]:
        """(subject phrase, predicate, object phrase): the unit relation F1 is computed on."""
        phrases = self.node_phrases()
        return [(phrases[r.subject], r.predicate, phrases[r.object]) for r in self.relations]

    def swap_relation(self, k: int) -> SceneGraph:
        """Same nodes, relation k with subject and object exchanged (OC-CLIP's L_rel negative)."""
        rels = list(self.relations)
        r = rels[k]
        rels[k] = Relation(r.object, r.predicate, r.subject)
        return SceneGraph(self.objects, tuple(rels))

    @property
    def is_empty(self) -> bool:
        return not self.objects


# The SceneGraph contract as JSON Schema (to_dict's form), for decoders that can only
# emit schema-valid JSON (vLLM structured outputs). Index ranges stay SceneGraph's check.
SCENE_GRAPH_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "objects": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "attributes": {"type": "array", "items": {"type": "string", "minLength": 1}},
                    "negated": {"type": "boolean"},
                },
                "required": ["name", "attributes", "negated"],
                "additionalProperties": False,
            },
        },
        "relations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "subject": {"type": "integer", "minimum": 0},
                    "predicate": {"type": "string", "minLength": 1},
                    "object": {"type": "integer", "minimum": 0},
                },
                "required": ["subject", "predicate", "object"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["objects", "relations"],
    "additionalProperties": False,
}

SCENE_OBJECT_TYPE = pa.struct(
    [
        ("name", pa.string()),
        ("attributes", pa.list_(pa.string())),
        ("negated", pa.bool_()),
    ]
)
RELATION_TYPE = pa.struct(
    [("subject", pa.int32()), ("predicate", pa.string()), ("object", pa.int32())]
)
SCENE_GRAPH_TYPE = pa.struct(
    [("objects", pa.list_(SCENE_OBJECT_TYPE)), ("relations", pa.list_(RELATION_TYPE))]
)
