"""Sources and the evidence drawn from them: verbatim quotes, found by whitespace-normalised match.

A source is a text file with a YAML record of its provenance. Its sentences are numbered for
authoring and coverage: the text is split into lines first (headings and list items stand on lines
of their own), then each line into sentences at end punctuation followed by a capital letter.

Lookup is linear in the sizes of the source and of the quote, so that a long quote cannot stall a
pack's loading: a quote is one substring search (Python's is linear for long needles), and a quote
as whole words is one substring search too, over the source and the quote written one character
per word (see `Source.find_words`). The "nearest sentence" offered for a quote that is not found is
a hint, and does bounded work: see `Source.nearest_sentence`.
"""

from __future__ import annotations

import bisect
import difflib
import re
from dataclasses import dataclass
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

SourceId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=80)]
Basis = Literal[
    "controlled-trials",
    "not-placebo-controlled-trials",
    "investigational",
    "stated",
]
BASES: tuple[str, ...] = get_args(Basis)

# Values of earlier versions, with what to write instead.
RETIRED_BASES: dict[str, str] = {
    "clinical-experience": "stated (the source names no clinical experience)",
    "descriptive": "stated",
    "uncontrolled-trials": "not-placebo-controlled-trials where the source says so (a trial "
    "can be controlled without a placebo), else stated",
    "off-label": "stated, with the off-label caveat",
}


class Attribution(BaseModel):
    """Whose words a source is, and under which licence they are used."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    work: str = Field(description="the work the text comes from")
    url: str | None = Field(default=None, description="where the work is published")
    license: str = Field(description="the licence of the work, e.g. CC BY-SA 4.0")
    license_url: str | None = Field(default=None, description="the licence's text")
    changes: str | None = Field(default=None, description="what was changed, if anything")


class Exclusion(BaseModel):
    """A sentence of the source deliberately not encoded, and why."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    quote: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="the sentence, verbatim"
    )
    reason: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="why it makes no claim to encode"
    )


class SourceRecord(BaseModel):
    """A source's record: its text file, attribution and provenance (sources/<id>.yaml)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    id: SourceId = Field(description="the id rules cite as evidence.source")
    title: str = Field(description="a title for people")
    text: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="file name of the verbatim text, next to this record"
    )
    attribution: Attribution
    provenance: str = Field(description="where the text came from and how it was received")
    not_encoded: list[Exclusion] = Field(
        default_factory=list, description="sentences left out on purpose, each with its reason"
    )


def normalise_space(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(]?[A-Z])")

# A word (a run of letters and digits, as str.isalnum has them), or any one other character.
_TOKEN = re.compile(r"[^\W_]+|[\W_]")
_CODES = 0x110000  # the code points there are: the distinct words one character can spell
_WIDE = 0x88000  # beyond that, a word is two characters: one below this, one from it up

HINT_CHARS = 1000  # the longest stretch of a quote and of a sentence compared for a hint
HINT_SEARCHES = 16  # the most searches for the first half of a quote, for a hint


def _search(text: str, part: str, start: int = 0) -> int:
    """Every substring search of a source, in one place (str.find: linear for long parts)."""
    return text.find(part, start)


@dataclass(frozen=True)
class Sentence:
    number: int  # 1-based
    text: str  # whitespace-normalised
    start: int  # offset in the normalised source text
    end: int


class Source:
    """A source text with its record, ready for quote lookup."""

    def __init__(self, record: SourceRecord, raw_text: str) -> None:
        self.record = record
        self.id = record.id
        self.raw_text = raw_text
        self.sentences = self._split(raw_text)
        self.text = " ".join(s.text for s in self.sentences)
        self._ends = [s.end for s in self.sentences]
        self._spelt: tuple[str, list[int], dict[str, str], int] | None = None

    @staticmethod
    def _split(raw: str) -> list[Sentence]:
        sentences: list[Sentence] = []
        offset = 0
        for line in raw.splitlines():
            line = normalise_space(line)
            if not line:
                continue
            for piece in _SENTENCE_END.split(line):
                piece = piece.strip()
                if not piece:
                    continue
                sentences.append(Sentence(len(sentences) + 1, piece, offset, offset + len(piece)))
                offset += len(piece) + 1
        return sentences

    def find(self, quote: str) -> int:
        """Offset of the whitespace-normalised quote in the normalised text, or -1."""
        return _search(self.text, normalise_space(quote))

    def find_words(self, quote: str) -> int:
        """Offset of the quote where it stands as whole words of the text (not "ed" inside
        "required"), or -1.

        A quote stands as whole words exactly where its words and other characters are a run of
        the text's: so both are written one character per word (and per other character), and the
        quote is found in the text by one search, however often it occurs inside longer words."""
        quote = normalise_space(quote)
        if not quote:
            return 0
        if self._spelt is None:
            self._spelt = _spell(self.text)
        spelt, starts, codes, width = self._spelt
        try:
            needle = "".join(codes[token] for token in _TOKEN.findall(quote))
        except KeyError:
            return -1  # a word the text does not have
        at = _search(spelt, needle)
        return starts[at // width] if at >= 0 else -1

    def sentences_of(self, quote: str) -> list[Sentence]:
        """The sentences a quote overlaps (empty when the quote is not in the source)."""
        start = self.find(quote)
        if start < 0:
            return []
        end = start + len(normalise_space(quote))
        found = []
        for i in range(bisect.bisect_right(self._ends, start), len(self.sentences)):
            if self.sentences[i].start >= end:
                break
            found.append(self.sentences[i])
        return found

    def nearest_sentence(self, quote: str) -> Sentence | None:
        """The sentence most like a quote that was not found (for 'did you mean'): a sentence
        that holds the quote's first half, else the one most like it (difflib's ratio, at least
        0.4).

        The work is bounded: the first half is searched for at most HINT_SEARCHES times, a
        sentence is compared only where its length leaves it a chance to be the most like the
        quote, and then on at most HINT_CHARS characters of each."""
        norm = normalise_space(quote)
        holds = self._holding(norm[: len(norm) // 2]) if norm else set()
        best, score = None, 0.0
        for i, s in enumerate(self.sentences):
            floor = 0.9 if i in holds or (norm and len(norm) < 2) else 0.0
            total = len(norm) + len(s.text)
            upper = 2 * min(len(norm), len(s.text)) / total if total else 1.0  # >= the ratio
            if max(upper, floor) <= score:
                continue
            matcher = difflib.SequenceMatcher(
                None, norm[:HINT_CHARS], s.text[:HINT_CHARS], autojunk=False
            )
            ratio = matcher.ratio() if matcher.quick_ratio() > max(score, floor) else 0.0
            ratio = max(ratio, floor)
            if ratio > score:
                best, score = s, ratio
        return best if score >= 0.4 else None

    def _holding(self, part: str) -> set[int]:
        """Indices of sentences that hold `part` (those of its first HINT_SEARCHES places)."""
        holds: set[int] = set()
        at = _search(self.text, part)
        for _ in range(HINT_SEARCHES - 1):
            if at < 0:
                break
            i = bisect.bisect_right(self._ends, at)  # the first sentence ending after `at`
            inside = (
                i < len(self.sentences)
                and self.sentences[i].start <= at
                and at + len(part) <= self._ends[i]
            )
            if inside:
                holds.add(i)
            at = _search(self.text, part, self._ends[i] + 1 if inside else at + 1)
        return holds


def _spell(text: str) -> tuple[str, list[int], dict[str, str], int]:
    """The text written one character per token (a word, or one other character): that string,
    the offset in the text each token starts at, the characters each token is written as, and
    how many characters a token takes: one, or two for a text with more distinct words than
    there are characters (one from below _WIDE, one from it up, so that a match cannot start
    halfway through a token)."""
    index: dict[str, int] = {}
    order: list[int] = []
    starts: list[int] = []
    for match in _TOKEN.finditer(text):
        token = match.group()
        i = index.get(token)
        if i is None:
            i = index[token] = len(index)
        order.append(i)
        starts.append(match.start())
    if len(index) <= _CODES:
        width, written = 1, [chr(i) for i in range(len(index))]
    else:
        width, written = 2, [chr(i // _WIDE) + chr(_WIDE + i % _WIDE) for i in range(len(index))]
    codes = dict(zip(index, written, strict=True))
    return "".join([written[i] for i in order]), starts, codes, width
