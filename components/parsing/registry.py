"""Parsers by name: every parser has ``parse_batch(captions) -> list[SceneGraph]``."""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from components.parsing.scene_graph import SceneGraph


class CaptionParser(Protocol):
    name: str
    version: str  # model / rules / prompt version: with name, what made a graph

    def parse_batch(self, captions: list[str]) -> list[SceneGraph]: ...


# name -> "module:Class"; imported lazily so the template parser needs no spaCy/transformers
PARSERS: dict[str, str] = {
    "template": "components.parsing.template:TemplateParser",
    "spacy": "components.parsing.spacy.parser:SpacyParser",
    "llm": "components.parsing.llm_parser:LLMParser",
}


def get_parser(name: str, **options: Any) -> CaptionParser:
    """Build a registered parser; options go to its constructor (e.g. model name)."""
    if name not in PARSERS:
        raise KeyError(f"unknown parser {name!r}; known: {sorted(PARSERS)}")
    module_name, class_name = PARSERS[name].split(":")
    parser_class = getattr(importlib.import_module(module_name), class_name)
    return parser_class(**options)


def parser_id(parser: CaptionParser) -> str:
    """ "name:version", the provenance string a parsed row carries ("spacy:en_core_web_sm-3.8.0+rules3")."""
    return f"{parser.name}:{getattr(parser, 'version', 'unversioned')}"
