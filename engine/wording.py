"""Words that change how strong a claim is: the source's hedges, and the intensifiers a statement
must not add.

A statement says what its quote says and no more. Two slips are common enough to check for: a
quote that hedges ("suggested", "seemed") paraphrased as a plain fact, and a statement that adds
strength its quote lacks ("only", "always", "proven"). Both are found by whole words,
case-insensitively, so "maybe" is not "may" and "onlyness" is not "only".
"""

from __future__ import annotations

import re

# A source hedges a claim with these (docs/authoring.md lists them).
HEDGES: tuple[str, ...] = (
    "suggest",
    "suggests",
    "suggested",
    "seem",
    "seems",
    "seemed",
    "believe",
    "believes",
    "believed",
    "may",
    "might",
    "possibly",
    "perhaps",
    "appear",
    "appears",
    "appeared",
    "likely",
)

# A statement must not add these when its quote lacks them.
INTENSIFIERS: tuple[str, ...] = (
    "only",
    "always",
    "never",
    "must",
    "proven",
    "proved",
    "proves",
    "definitely",
    "certainly",
    "clearly",
    "guaranteed",
    "established",
    "highly",
    "strongly",
    "best",
    "cures",
    "all",
    "every",
)

_WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?")


def words(text: str) -> set[str]:
    """The words of a text, lower case."""
    return {w.casefold() for w in _WORD.findall(text)}


def hedges_in(text: str) -> list[str]:
    """The hedge words a text holds, in the order of HEDGES."""
    found = words(text)
    return [w for w in HEDGES if w in found]


def added_intensifiers(statement: str, quote: str) -> list[str]:
    """Intensifiers the statement holds and the quote does not."""
    said, quoted = words(statement), words(quote)
    return [w for w in INTENSIFIERS if w in said and w not in quoted]
