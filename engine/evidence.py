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
    "uncontrolled-trials",
    "clinical-experience",
    "off-label",
    "investigational",
    "descriptive",
]
BASES: tuple[str, ...] = get_args(Basis)


class Attribution(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    work: str
    url: str | None = None
    license: str
    license_url: str | None = None
    changes: str | None = None


class Exclusion(BaseModel):
    """A sentence of the source deliberately not encoded, and why."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    quote: Annotated[str, StringConstraints(min_length=1)]
    reason: Annotated[str, StringConstraints(min_length=1)]


class SourceRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    id: SourceId
    title: str
    text: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="file name of the verbatim text, next to this record"
    )
    attribution: Attribution
    provenance: str
    not_encoded: list[Exclusion] = Field(default_factory=list)


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
