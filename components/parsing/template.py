"""The exact inverse of the synthetic caption grammar (components/data/grammar.py).

It accepts only the grammar's language, so a caption from elsewhere is an error naming
the caption rather than a silently wrong graph. The vocabulary (attribute words and
names) comes from the world, which keeps "small red rubber cube" unambiguous: the caller
passes it (components.data.worlds.template_parser_options), so parsing needs no world.
"""

from __future__ import annotations

from components.parsing.grammar import RELATION_PHRASES
from components.parsing.scene_graph import Relation, SceneGraph, SceneObject

PHRASE_TO_PREDICATE = {phrase: predicate for predicate, phrase in RELATION_PHRASES.items()}


class TemplateParseError(ValueError):
    """A caption outside the synthetic grammar."""


class TemplateParser:
    """Parses grammar captions back to the exact SceneGraph ``realise`` produced."""

    name = "template"
    GRAMMAR_VERSION = 1  # bump with components/data/grammar.py's caption language

    def __init__(
        self,
        attribute_words: list[str] | None = None,
        names: list[str] | None = None,
        world: str | None = None,
    ):
        """``world`` only names the vocabulary given (for ``version``); a world without
        one would claim a restriction it does not apply, so it is refused."""
        if world and not names:
            raise ValueError(
                f"template parser: world={world!r} needs the world's vocabulary; pass "
                f"components.data.worlds.template_parser_options({world!r})"
            )
        self.attribute_words = set(attribute_words or []) or None
        self.names = set(names or []) or None
        self.world = world

    @property
    def version(self) -> str:
        """Grammar version and the world whose vocabulary restricts it (if any)."""
        return f"grammar{self.GRAMMAR_VERSION}" + (f"+{self.world}" if self.world else "")

    def parse_batch(self, captions: list[str]) -> list[SceneGraph]:
        return [self.parse(c) for c in captions]

    def parse(self, caption: str) -> SceneGraph:
        if not caption or not caption.strip():
            raise TemplateParseError("empty caption")
        clauses = caption.split(", ")
        if len(clauses) > 1:
            if not clauses[-1].startswith("and "):
                raise TemplateParseError(f"{caption!r}: last clause must start with 'and '")
            clauses[-1] = clauses[-1][4:]
        objects: list[SceneObject] = []
        index_of: dict[str, int] = {}
        relations: list[Relation] = []

        def noun_phrase(words: list[str]) -> int:
            if len(words) < 2:
                raise TemplateParseError(
                    f"{caption!r}: expected a noun phrase, got {' '.join(words)!r}"
                )
            determiner, *attributes, name = words
            self._check_vocabulary(caption, attributes, name)
            key = " ".join([*attributes, name])
            if determiner == "the":
                if key not in index_of:
                    raise TemplateParseError(
                        f"{caption!r}: 'the {key}' refers to nothing before it"
                    )
                return index_of[key]
            if determiner not in ("a", "an", "no"):
                raise TemplateParseError(f"{caption!r}: unexpected determiner {determiner!r}")
            if determiner != "no" and key in index_of:
                raise TemplateParseError(f"{caption!r}: '{key}' introduced twice")
            objects.append(SceneObject(name, tuple(attributes), negated=determiner == "no"))
            if determiner != "no":
                index_of[key] = len(objects) - 1
            return len(objects) - 1

        for clause in clauses:
            words = clause.split(" ")
            fronted = self._leading_relation(words)
            if fronted is not None:
                predicate, length = fronted
                rest = words[length:]
                if "is" not in rest:
                    raise TemplateParseError(f"{caption!r}: fronted clause {clause!r} lacks 'is'")
                split = rest.index("is")
                target = noun_phrase(rest[:split])
                subject = noun_phrase(rest[split + 1 :])
                relations.append(Relation(subject, predicate, target))
                continue
            located = self._inner_relation(words)
            if located is None:
                noun_phrase(words)
                continue
            start, predicate, length = located
            subject = noun_phrase(words[:start])
            relations.append(Relation(subject, predicate, noun_phrase(words[start + length :])))
        return SceneGraph(tuple(objects), tuple(relations))

    def _check_vocabulary(self, caption: str, attributes: list[str], name: str) -> None:
        if self.names is not None and name not in self.names:
            raise TemplateParseError(f"{caption!r}: unknown object name {name!r}")
        if self.attribute_words is not None:
            unknown = [a for a in attributes if a not in self.attribute_words]
            if unknown:
                raise TemplateParseError(f"{caption!r}: unknown attribute words {unknown}")

    @staticmethod
    def _leading_relation(words: list[str]) -> tuple[str, int] | None:
        for phrase, predicate in sorted(PHRASE_TO_PREDICATE.items(), key=lambda kv: -len(kv[0])):
            n = len(phrase.split(" "))
            if " ".join(words[:n]) == phrase:
                return predicate, n
        return None

    @staticmethod
    def _inner_relation(words: list[str]) -> tuple[int, str, int] | None:
        """First relation phrase after a determiner-led noun phrase (start, predicate, length)."""
        for start in range(2, len(words)):
            for phrase, predicate in sorted(
                PHRASE_TO_PREDICATE.items(), key=lambda kv: -len(kv[0])
            ):
                n = len(phrase.split(" "))
                if " ".join(words[start : start + n]) == phrase:
                    return start, predicate, n
        return None
