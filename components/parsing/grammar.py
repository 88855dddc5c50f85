"""The synthetic caption language's relation phrases, read by both of its directions.

The caption grammar (components/data/grammar.py) writes a predicate as its phrase and the
template parser (components/parsing/template.py) reads the phrase back as the predicate;
one table for both keeps the parser the grammar's exact inverse without parsing
importing the data layer.
"""

from __future__ import annotations

# predicate in the graph -> phrase in the caption
RELATION_PHRASES: dict[str, str] = {
    "left of": "to the left of",
    "right of": "to the right of",
    "above": "above",
    "below": "below",
    "in front of": "in front of",
    "behind": "behind",
}
