"""One caption's parse outcome, shared by every parser that reports rejects."""

from __future__ import annotations

from dataclasses import dataclass

from components.parsing.scene_graph import SceneGraph


@dataclass(frozen=True)
class ParseResult:
    """A graph, or a reject reason (and the raw answer/error text to inspect it by)."""

    graph: SceneGraph | None
    reason: str | None = None
    raw: str | None = None
    detail: str | None = None
