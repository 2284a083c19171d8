"""Did-you-mean: the closest known names to a misspelt one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, candidates: Iterable[str], limit: int = 3, cutoff: float = 0.6) -> list[str]:
    """Known names most similar to `word`, best first; empty when nothing is close."""
    pool = list(candidates)
    hits = difflib.get_close_matches(word, pool, n=limit, cutoff=cutoff)
    if hits:
        return hits
    # A misspelt word inside a longer name ("restles legs") still deserves a hint.
    scored = []
    for name in pool:
        ratio = difflib.SequenceMatcher(None, word, name).ratio()
        if word and (word in name or name in word):
            ratio = max(ratio, 0.75)
        if ratio >= cutoff - 0.15:
            scored.append((-ratio, name))
    return [name for _, name in sorted(scored)[:limit]]


def did_you_mean(word: str, candidates: Iterable[str], cutoff: float = 0.7) -> str:
    """' (did you mean X?)' or '' — ready to append to an error message."""
    hits = difflib.get_close_matches(word, list(candidates), n=1, cutoff=cutoff)
    return f" (did you mean {hits[0]!r}?)" if hits else ""
