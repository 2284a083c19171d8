"""Did-you-mean: the known names a misspelt one is genuinely close to.

One threshold decides: a name is offered when the spelling given is at least `CLOSE` similar to it,
where similarity is 1 minus the Damerau-Levenshtein distance (insertions, deletions, substitutions
and transpositions of adjacent characters) over the length of the longer of the two. At 0.8 that is
one slip in five characters: "clonazapam" (clonazepam, 0.9), "panic disordr" (panic disorder,
0.93). A multi-word name is also compared by its leading words, so a name typed in part is found
("restles legs" is 0.92 from "restless legs", the start of restless legs syndrome). A correctly
spelled name of another drug is not that close to a known one ("sertraline" is 0.1 from
flurazepam; "oxazepam" and lorazepam 0.78), so it is reported unrecognised with no suggestion
rather than with a different drug.
"""

from __future__ import annotations

from collections.abc import Iterable

from rapidfuzz.distance import DamerauLevenshtein

CLOSE = 0.8  # the one threshold: the similarity a suggestion needs


def similarity(given: str, name: str) -> float:
    """How close a spelling is to a name (1.0 equal), comparing the name whole and by its leading
    words."""
    if not given or not name:
        return 0.0
    best = DamerauLevenshtein.normalized_similarity(given, name)
    words = name.split(" ")
    for end in range(1, len(words)):
        part = " ".join(words[:end])
        best = max(best, DamerauLevenshtein.normalized_similarity(given, part))
    return best


def closest(word: str, candidates: Iterable[str], limit: int = 3) -> list[str]:
    """Known names at least CLOSE to `word`, most similar first; empty when none is."""
    scored = sorted(
        (-score, name) for name in candidates if (score := similarity(word, name)) >= CLOSE
    )
    return [name for _, name in scored[:limit]]


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """' (did you mean X?)' or '' — ready to append to an error message."""
    hits = closest(word, candidates, limit=1)
    return f" (did you mean {hits[0]!r}?)" if hits else ""
