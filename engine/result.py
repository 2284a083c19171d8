"""The output contract: what applies, why, with which caveats and which words of the source; and
what the pack could not speak to (not covered, unrecognised, undetermined)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    # every field is always written (model_dump, --json): the JSON Schema says so (required)
    model_config = ConfigDict(frozen=True, json_schema_serialization_defaults_required=True)


class CaveatNote(_Out):
    """A caveat on a statement, with the words of the source that put it there."""

    code: str = Field(description="the caveat code, e.g. third-line")
    label: str = Field(description="a short label, e.g. 'third line'")
    text: str = Field(description="what the caveat means")
    support: str = Field(description="the verbatim words of the source behind the caveat")


class EvidenceNote(_Out):
    """The source words a statement rests on."""

    source: str = Field(description="the source's id")
    quote: str = Field(description="the verbatim quote")
    basis: str = Field(
        description="what evidence the source names: controlled-trials, "
        "not-placebo-controlled-trials, investigational, or stated (none named)"
    )


class Because(_Out):
    """One scenario fact behind a statement."""

    fact: str = Field(description="conditions, medications, patient.age, therapy.intent, ...")
    value: str | float | int | None = Field(
        description="the scenario's value (the item as given for conditions and medications); "
        "null for an absence"
    )
    test: str = Field(description="what held, e.g. 'is a seizures', '< 18', 'no phenytoin'")
    concept: str | None = Field(default=None, description="the concept the item was read as")
    chain: list[str] = Field(default_factory=list, description="is_a path up to the tested concept")
    codes: list[str] = Field(default_factory=list, description="ICD-10-CM codes walked")


class Statement(_Out):
    """A statement of the source that applies to the scenario."""

    rule: str = Field(description="the rule's id")
    category: str = Field(description="its category (pack.yaml lists them)")
    text: str = Field(description="the statement")
    caveats: list[CaveatNote] = Field(description="what qualifies it, each with its support")
    evidence: EvidenceNote = Field(description="the source words the statement rests on")
    because: list[Because] = Field(description="the scenario facts that made it apply")
    status: Literal["draft", "active", "retired"] = Field(
        description="the rule's lifecycle status (draft only when drafts were asked for)"
    )
    reviewed: dt.date | None = Field(
        description="the date of the rule's last review (YYYY-MM-DD), or null if none is recorded"
    )


class Undetermined(_Out):
    """A rule that may apply, but hinges on something the scenario does not settle."""

    rule: str = Field(description="the rule's id")
    category: str = Field(description="its category")
    text: str = Field(description="the statement it would make")
    caveats: list[CaveatNote] = Field(description="what would qualify it")
    evidence: EvidenceNote = Field(description="the source words the statement would rest on")
    needs: list[str] = Field(
        description="what would decide it: scenario fields not given (e.g. patient.age), and "
        "items that were not recognised (e.g. 'medications: \"Dilantin\" (not recognised)')"
    )
    because: list[Because] = Field(description="facts already known that it depends on")
    status: Literal["draft", "active", "retired"] = Field(description="the rule's status")
    reviewed: dt.date | None = Field(
        description="the date of the rule's last review (YYYY-MM-DD), or null if none is recorded"
    )


class Recognized(_Out):
    """How a condition or medication of the scenario was recognised."""

    field: Literal["conditions", "medications"] = Field(
        description="the scenario list the item is in: conditions or medications"
    )
    input: str = Field(description="the item as given")
    concept: str | None = Field(description="the concept it was read as")
    label: str = Field(description="the concept's label")
    matched_by: str = Field(description="label, synonym or code")
    codes: list[str] = Field(default_factory=list, description="ICD-10-CM codes walked")
    verified: bool | None = Field(
        default=None,
        description="for an item matched by code: whether that code's binding was checked "
        "against its code system (false: a code the pack marks as not verified offline)",
    )


class NotCovered(_Out):
    """A recognised item the pack says nothing about."""

    field: Literal["conditions", "medications"] = Field(
        description="the scenario list the item is in: conditions or medications"
    )
    input: str = Field(description="the item as given")
    concept: str | None = Field(description="the concept, or null for a code no concept binds")
    label: str = Field(description="the concept's label, or the code's description")
    reason: str = Field(description="why nothing is said about it")


class Unrecognized(_Out):
    """An item that was not recognised: never taken as absent."""

    field: Literal["conditions", "medications"] = Field(
        description="the scenario list the item is in: conditions or medications"
    )
    input: str = Field(description="the item as given")
    reason: str = Field(description="why it was not recognised")
    suggestions: list[str] = Field(description="known names its spelling is close to")


class KnowledgeBaseRef(_Out):
    """The pack a result came from: its id, version and digest (as in its changelog)."""

    id: str = Field(description="the pack's id, e.g. clonazepam")
    version: str = Field(description="the pack's version, e.g. 2.0.0")
    digest: str = Field(
        description="SHA-256 of the pack's files (its manifest without the changelog), 64 "
        "lowercase hexadecimal digits: the digest its changelog records for a release"
    )
    released: bool = Field(
        description="whether the changelog records this digest for this version (false: the "
        "pack was changed since that version was released)"
    )


class Result(_Out):
    """Everything one evaluation of a scenario found: what applies (statements), what may apply
    but hinges on what the scenario does not settle (undetermined), the items the pack says nothing
    about (not_covered) or did not recognise (unrecognized), how each item was read (recognized),
    and the exact pack that answered (knowledge_base)."""

    scenario_id: str | None = Field(description="the scenario's id")
    statements: list[Statement] = Field(description="what applies, grouped by category")
    undetermined: list[Undetermined] = Field(description="what may apply, and what would decide")
    not_covered: list[NotCovered] = Field(description="recognised items the pack does not cover")
    unrecognized: list[Unrecognized] = Field(description="items that were not recognised")
    recognized: list[Recognized] = Field(description="how each item was recognised")
    background_included: bool = Field(description="whether background statements were asked for")
    knowledge_base: KnowledgeBaseRef = Field(description="the pack that produced this result")

    def rules(self) -> list[str]:
        """Ids of the rules that applied, in result order."""
        return [s.rule for s in self.statements]

    def statement(self, rule: str) -> Statement | None:
        return next((s for s in self.statements if s.rule == rule), None)
