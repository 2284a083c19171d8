"""Rules: one declarative claim of a source each, with its condition, caveats and evidence."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from .caveats import CaveatCode
from .conditions import When
from .evidence import Basis, SourceId, normalise_space

RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=80)]
CategoryId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]*$", max_length=40)]


class Evidence(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    source: SourceId
    quote: Annotated[str, StringConstraints(min_length=1)]
    basis: Basis

    @field_validator("quote")
    @classmethod
    def _one_line(cls, value: str) -> str:
        return normalise_space(value)


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    id: RuleId
    category: CategoryId
    statement: Annotated[str, StringConstraints(min_length=1)]
    when: When
    caveats: list[CaveatCode] = Field(default_factory=list)
    evidence: Evidence
    note: str | None = Field(default=None, description="for authors; not shown in results")

    @field_validator("statement")
    @classmethod
    def _one_line(cls, value: str) -> str:
        return normalise_space(value)

    @property
    def background(self) -> bool:
        """True for a statement that holds whatever the scenario (`when: always`)."""
        return self.when == "always"


class RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    rules: list[Rule] = Field(min_length=1)
