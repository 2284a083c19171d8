"""Sources and the evidence drawn from them: verbatim quotes, found by whitespace-normalised match.

A source is a text file with a YAML record of its provenance. Its sentences are numbered for
authoring and coverage: the text is split into lines first (headings and list items stand on lines
of their own), then each line into sentences at end punctuation followed by a capital letter.
"""

from __future__ import annotations

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
        return self.text.find(normalise_space(quote))

    def find_words(self, quote: str) -> int:
        """Offset of the quote where it stands as whole words of the text (not "ed" inside
        "required"), or -1."""
        quote = normalise_space(quote)
        start = self.text.find(quote)
        while start >= 0:
            end = start + len(quote)
            before = self.text[start - 1] if start else " "
            after = self.text[end] if end < len(self.text) else " "
            if not (before.isalnum() and quote[:1].isalnum()) and not (
                after.isalnum() and quote[-1:].isalnum()
            ):
                return start
            start = self.text.find(quote, start + 1)
        return -1

    def sentences_of(self, quote: str) -> list[Sentence]:
        """The sentences a quote overlaps (empty when the quote is not in the source)."""
        start = self.find(quote)
        if start < 0:
            return []
        end = start + len(normalise_space(quote))
        return [s for s in self.sentences if s.start < end and start < s.end]

    def nearest_sentence(self, quote: str) -> Sentence | None:
        """The sentence most like a quote that was not found (for 'did you mean')."""
        import difflib

        norm = normalise_space(quote)
        best, score = None, 0.0
        for s in self.sentences:
            ratio = difflib.SequenceMatcher(None, norm, s.text, autojunk=False).ratio()
            if norm and norm[: len(norm) // 2] in s.text:
                ratio = max(ratio, 0.9)
            if ratio > score:
                best, score = s, ratio
        return best if score >= 0.4 else None
