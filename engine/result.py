"""The output contract: what applies, why, with which caveats and which quote; and what the pack
could not speak to (not covered, unrecognised, undetermined)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class CaveatNote(_Out):
    code: str
    text: str


class EvidenceNote(_Out):
    source: str
    quote: str
    basis: str


class Because(_Out):
    """One scenario fact behind a statement."""

    fact: str = Field(description="conditions, medications, patient.age, therapy.intent, ...")
    value: str | float | int | None = Field(
        description="the scenario's value (the item as given for conditions and medications); "
        "null for an absence"
    )
    test: str = Field(description="what held, e.g. 'is a seizures', '< 18', 'no phenytoin'")
    concept: str | None = None
    chain: list[str] = Field(default_factory=list, description="is_a path up to the tested concept")
    codes: list[str] = Field(default_factory=list, description="ICD-10-CM codes walked")


class Statement(_Out):
    rule: str
    category: str
    text: str
    caveats: list[CaveatNote]
    evidence: EvidenceNote
    because: list[Because]


class Undetermined(_Out):
    rule: str
    category: str
    text: str
    caveats: list[CaveatNote]
    evidence: EvidenceNote
    needs: list[str] = Field(description="scenario fields that would decide it")
    because: list[Because] = Field(description="facts already known that it depends on")


class Recognized(_Out):
    field: Literal["conditions", "medications"]
    input: str
    concept: str | None
    label: str
    matched_by: str
    codes: list[str] = Field(default_factory=list)


class NotCovered(_Out):
    field: Literal["conditions", "medications"]
    input: str
    concept: str | None
    label: str
    reason: str


class Unrecognized(_Out):
    field: Literal["conditions", "medications"]
    input: str
    reason: str
    suggestions: list[str]


class KnowledgeBaseRef(_Out):
    id: str
    version: str
    digest: str


class Result(_Out):
    scenario_id: str | None
    statements: list[Statement]
    undetermined: list[Undetermined]
    not_covered: list[NotCovered]
    unrecognized: list[Unrecognized]
    recognized: list[Recognized]
    background_included: bool
    knowledge_base: KnowledgeBaseRef

    def rules(self) -> list[str]:
        """Ids of the rules that applied, in result order."""
        return [s.rule for s in self.statements]

    def statement(self, rule: str) -> Statement | None:
        return next((s for s in self.statements if s.rule == rule), None)
