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

The work per item is bounded, whatever the input. The distance between two words is at least the
difference of their lengths, so two words are CLOSE only if the shorter has at least 85% of the
longer's letters. Hence:

- a spelling with more letters than the longest candidate name's length / CLOSE (50 letters for
  the bundled pack, whose longest name has 43 characters) cannot be close to any name, and is
  compared with none: a 10,000-character label costs one pass to count its letters;
- otherwise each name costs at most one distance computation per word, in order, stopping at the
  first word that is not CLOSE, and none for a pair of words whose lengths already rule it out;
  a distance is computed with rapidfuzz's `score_cutoff` at CLOSE, so it stops as soon as the
  words are known not to be close.

So a spelling costs at most as many distance computations as the names have words, each between
words no longer than the pack's longest word / CLOSE. The shortcuts change no score: a pair they
skip would have scored below CLOSE, which makes the name's similarity 0 all the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from rapidfuzz.distance import DamerauLevenshtein

CLOSE = 0.85  # the one threshold: how similar each word must be

# words that carry meaning a typo cannot change
CONNECTING = frozenset(
    {"with", "without", "no", "not", "non", "and", "or", "of", "in", "on", "nos"}
)
NEGATING_PREFIXES = ("a", "an", "non", "un", "in", "dis", "anti")


_SLACK = 1e-9  # pruning never skips a pair that rounding could put at exactly CLOSE


def word_similarity(given: str, known: str, cutoff: float = 0.0) -> float:
    """How close one word is to another (1.0 equal; 0.0 where a typo cannot be the reason).

    With a `cutoff`, a pair less similar than the cutoff scores 0.0, found without computing the
    distance where the lengths alone rule it out."""
    if given == known:
        return 1.0
    if cutoff:
        shorter, longer = sorted((len(given), len(known)))
        if shorter < (cutoff - _SLACK) * longer:  # similarity <= shorter / longer
            return 0.0
    if given in CONNECTING or known in CONNECTING:
        return 0.0
    for prefix in NEGATING_PREFIXES:
        if known == prefix + given or given == prefix + known:
            return 0.0
    if cutoff:
        return DamerauLevenshtein.normalized_similarity(given, known, score_cutoff=cutoff - _SLACK)
    return DamerauLevenshtein.normalized_similarity(given, known)


def similarity(given: str, name: str) -> float:
    """How close a spelling is to a name: the mean similarity of their words in place, when
    every word is CLOSE and the spelling has all the name's words or all but its last; else 0."""
    return _similarity(given.split(), _words(name))


@lru_cache(maxsize=4096)  # names come from packs (and messages' candidates): few, and bounded
def _words(name: str) -> tuple[str, ...]:
    return tuple(name.split())


def _similarity(words: list[str], known: tuple[str, ...]) -> float:
    if not words or len(words) not in (len(known), len(known) - 1):
        return 0.0
    total = 0.0
    for g, k in zip(words, known, strict=False):
        score = word_similarity(g, k, CLOSE)
        if score < CLOSE:
            return 0.0  # the rest need not be compared
        total += score
    whole = 1.0 if len(words) == len(known) else 0.99  # the full name first
    return whole * total / len(words)


def reach(names: Iterable[str]) -> float:
    """The most letters a spelling can have and still be close to one of the names."""
    return max((len(name) for name in names), default=0) / (CLOSE - _SLACK)


def within_reach(spelling: str, limit: float) -> bool:
    """Whether a spelling has few enough letters to be close to a name (see `reach`)."""
    return sum(len(word) for word in spelling.split()) <= limit


def closest(word: str, candidates: Iterable[str], limit: int = 3) -> list[str]:
    """Known names the spelling is close to, most similar first; empty when none is."""
    names = list(candidates)
    words = word.split()
    if sum(len(w) for w in words) > reach(names):
        return []
    scored = sorted(
        (-score, name) for name in names if (score := _similarity(words, _words(name))) > 0
    )
    return [name for _, name in scored[:limit]]


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """' (did you mean X?)' or '' — ready to append to an error message."""
    hits = closest(word, candidates, limit=1)
    return f" (did you mean {hits[0]!r}?)" if hits else ""
