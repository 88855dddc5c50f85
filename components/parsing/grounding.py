"""Is an LLM's scene graph made of the caption's own words? Text hygiene and grounding.

An LLM answer can be valid JSON and a valid SceneGraph and still be wrong data: an object,
attribute or relation the caption never states ("loaded", "burning", "shoots" for "a red
cat on a sofa": a hallucination or an injection), or a name that reads right but carries
invisible characters (zero-width, bidi controls) that make two equal-looking phrases
different strings downstream. Both are checked here; ``llm_parser`` turns a failure into a
counted reject that names the element.

Grounding compares word forms, not strings: both the caption's words and an element's
words are reduced by ``word_stem``, a small English inflection stripper (plural -s/-es,
-ing, -ed, a final -e, a doubled final consonant), so "cats" grounds "cat", "sitting on"
grounds "sits on" and "parked" grounds "parking". It knows no irregular forms ("ran" does
not ground "run") and no synonyms ("beside" does not ground "next to"): the parser's
retry quotes the error back and the model answers again with the caption's words.
Articles and copulas ("the", "is") inside a longer element need no grounding, so
"is on" grounds in "a cat on a sofa"; an element made only of them must still occur.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

from components.parsing.scene_graph import SceneGraph, SceneGraphError

WORD = re.compile(r"\w+")
# Words an LLM adds to a phrase without adding a fact ("is on", "the cat").
FUNCTION_WORDS = frozenset({"a", "an", "the", "is", "are", "be", "being"})
INFLECTIONS = ("ing", "ed", "es", "s")
MIN_STEM = 3  # "red", "bus", "bed" stay whole: stripping them would merge unrelated words
# Unicode categories no scene-graph phrase holds: controls (Cc), format characters (Cf:
# zero-width U+200B..U+200D, U+2060, U+FEFF, bidi controls U+202A..U+202E, U+2066..U+2069),
# surrogates, private use, unassigned, and line/paragraph separators.
FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


class UngroundedElement(SceneGraphError):
    """An object name, attribute or relation predicate whose words the caption lacks."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind  # "object", "attribute" or "relation": what the reject counts


def word_stem(word: str) -> str:
    """One form for a word's inflections ("sits", "sitting", "sit" -> "sit"), so grounding
    accepts the caption's word in another inflection and nothing else."""
    stem = word.lower()
    for suffix in INFLECTIONS:
        if stem.endswith(suffix) and len(stem) - len(suffix) >= MIN_STEM:
            stem = stem[: -len(suffix)]
            break
    if len(stem) > MIN_STEM and stem.endswith("e"):  # "ride"/"riding", "horse"/"horses"
        stem = stem[:-1]
    if len(stem) > MIN_STEM and stem[-1] == stem[-2] and stem[-1] not in "aeiou":
        stem = stem[:-1]  # "sitting" -> "sitt" -> "sit", "balls" -> "ball" -> "bal"
    return stem


def caption_stems(caption: str) -> frozenset[str]:
    """The word stems an element may use: every word of the caption, in any inflection."""
    return frozenset(word_stem(w) for w in WORD.findall(caption or ""))


def missing_words(text: str, stems: frozenset[str]) -> list[str]:
    """The words of ``text`` that the caption lacks (articles and copulas excused when the
    text has other words)."""
    words = [w.lower() for w in WORD.findall(text)]
    content = [w for w in words if w not in FUNCTION_WORDS] or words
    return [w for w in content if word_stem(w) not in stems]


def graph_elements(graph: SceneGraph) -> Iterator[tuple[str, str, str]]:
    """(kind, field path, text) for every name, attribute and predicate, in answer order."""
    for i, obj in enumerate(graph.objects):
        yield "object", f"objects[{i}].name", obj.name
        for j, attribute in enumerate(obj.attributes):
            yield "attribute", f"objects[{i}].attributes[{j}]", attribute
    for k, relation in enumerate(graph.relations):
        yield "relation", f"relations[{k}].predicate", relation.predicate


def check_clean_text(graph: SceneGraph) -> None:
    """Every element holds a letter or digit and no control, zero-width or bidi character;
    else SceneGraphError naming the field and the code point."""
    for _, path, text in graph_elements(graph):
        for ch in text:
            if unicodedata.category(ch) in FORBIDDEN_CATEGORIES:
                name = unicodedata.name(ch, "unnamed")
                raise SceneGraphError(
                    f"{path} {text!r} holds U+{ord(ch):04X} ({name}): control, zero-width "
                    "and bidi characters are not allowed"
                )
        if not WORD.search(text):
            raise SceneGraphError(f"{path} {text!r} has no letter or digit")


def check_grounded(graph: SceneGraph, caption: str) -> None:
    """Every name, attribute and predicate is made of the caption's words (in any
    inflection); else UngroundedElement naming the field and the missing words."""
    stems = caption_stems(caption)
    for kind, path, text in graph_elements(graph):
        missing = missing_words(text, stems)
        if missing:
            absent = ", ".join(repr(w) for w in missing)
            raise UngroundedElement(
                kind, f"{path} {text!r} does not occur in the caption (no {absent})"
            )
