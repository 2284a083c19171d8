"""Did-you-mean: the known names a misspelt one is genuinely close to.

A typo changes letters inside words; it does not add, drop or swap the words that carry meaning.
So a spelling is compared with a name word by word, and one threshold decides: every word must be
at least `CLOSE` similar to the name's word in the same place, where similarity is 1 minus the
Damerau-Levenshtein distance (insertions, deletions, substitutions and transpositions of adjacent
characters) over the length of the longer word. At 0.85 that is one slip in seven letters:
"clonazapam" (clonazepam, 0.9), "panic disordr" (panic disorder), "Dilantn" (Dilantin, 0.88).

The spelling has the name's words, or all of them but its last ("restles legs" for restless legs
syndrome, "panic" for panic disorder). Never a typo of each other: a word and the same word with a
negating prefix ("tonic" and "atonic", "convulsive" and "nonconvulsive"), and two different
connecting words ("with" and "without"). So a correctly spelled name of another drug is not offered
a known one ("clotiazepam" is 0.82 from clonazepam, "oxazepam" 0.78 from lorazepam), nor a
diagnosis its opposite ("agoraphobia without panic disorder" is not "... with panic disorder").
"""

from __future__ import annotations

from collections.abc import Iterable

from rapidfuzz.distance import DamerauLevenshtein

CLOSE = 0.85  # the one threshold: how similar each word must be

# words that carry meaning a typo cannot change
CONNECTING = frozenset(
    {"with", "without", "no", "not", "non", "and", "or", "of", "in", "on", "nos"}
)
NEGATING_PREFIXES = ("a", "an", "non", "un", "in", "dis", "anti")


def word_similarity(given: str, known: str) -> float:
    """How close one word is to another (1.0 equal; 0.0 where a typo cannot be the reason)."""
    if given == known:
        return 1.0
    if given in CONNECTING or known in CONNECTING:
        return 0.0
    for prefix in NEGATING_PREFIXES:
        if known == prefix + given or given == prefix + known:
            return 0.0
    return DamerauLevenshtein.normalized_similarity(given, known)


def similarity(given: str, name: str) -> float:
    """How close a spelling is to a name: the mean similarity of their words in place, when
    every word is CLOSE and the spelling has all the name's words or all but its last; else 0."""
    words, known = given.split(), name.split()
    if not words or len(words) not in (len(known), len(known) - 1):
        return 0.0
    scores = [word_similarity(g, k) for g, k in zip(words, known, strict=False)]
    if min(scores) < CLOSE:
        return 0.0
    whole = 1.0 if len(words) == len(known) else 0.99  # the full name first
    return whole * sum(scores) / len(scores)


def closest(word: str, candidates: Iterable[str], limit: int = 3) -> list[str]:
    """Known names the spelling is close to, most similar first; empty when none is."""
    scored = sorted((-score, name) for name in candidates if (score := similarity(word, name)) > 0)
    return [name for _, name in scored[:limit]]


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """' (did you mean X?)' or '' — ready to append to an error message."""
    hits = closest(word, candidates, limit=1)
    return f" (did you mean {hits[0]!r}?)" if hits else ""
