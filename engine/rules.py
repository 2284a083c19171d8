"""Rules: one declarative claim of a source each, with its condition, caveats, evidence and
lifecycle.

Every caveat a rule attaches carries the words of the source that support it (`support`): a span
of the rule's quote, or a quote of its own from the same source. A rule has a lifecycle status
(draft rules are evaluated only when asked for, retired ones never) and a review trail.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .caveats import CaveatCode
from .conditions import When
from .evidence import RETIRED_BASES, Basis, SourceId, normalise_space

# A rule id names the rule in results and cases, and `caveat rules new` names files after it: so
# lower-case words of letters and digits joined by single hyphens, never a path.
RULE_ID_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
RULE_ID_MAX = 80


def rule_id_problem(value: str) -> str | None:
    """Why a text cannot be a rule id, or None when it can."""
    if len(value) <= RULE_ID_MAX and re.fullmatch(RULE_ID_PATTERN, value):
        return None
    return (
        f"{value!r} is not a valid rule id: write lower-case letters and digits in words joined "
        f"by single hyphens, at most {RULE_ID_MAX} characters (pattern {RULE_ID_PATTERN}), "
        "e.g. rls-third-line"
    )


def _valid_rule_id(value: Any) -> Any:
    problem = rule_id_problem(value) if isinstance(value, str) else None
    if problem:
        raise PydanticCustomError("rule_id", "{problem}", {"problem": problem})
    return value


RuleId = Annotated[
    str,
    BeforeValidator(_valid_rule_id),
    StringConstraints(pattern=RULE_ID_PATTERN, max_length=RULE_ID_MAX),
]
CategoryId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]*$", max_length=40)]
Status = Literal["draft", "active", "retired"]


class Evidence(BaseModel):
    """The source words a rule rests on."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    source: SourceId = Field(description="the id of a source of the pack")
    quote: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="a verbatim span of the source (whitespace does not matter)"
    )
    basis: Basis = Field(description="what evidence the source names for the claim")

    @field_validator("quote")
    @classmethod
    def _one_line(cls, value: str) -> str:
        return normalise_space(value)

    @field_validator("basis", mode="before")
    @classmethod
    def _retired_basis(cls, value: Any) -> Any:
        if isinstance(value, str) and value in RETIRED_BASES:
            raise ValueError(
                f"basis {value!r} is no longer used: write {RETIRED_BASES[value]} "
                "(a specific basis only where the source names that evidence)"
            )
        return value


class CaveatUse(BaseModel):
    """A caveat a rule attaches, tied to the words of the source that support it."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    code: CaveatCode = Field(description="a caveat code of the pack (caveats.yaml)")
    support: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="the verbatim words of the source behind this caveat: a span of the rule's "
        "quote, or a quote of its own from the same source"
    )

    @model_validator(mode="before")
    @classmethod
    def _needs_support(cls, data: Any) -> Any:
        if isinstance(data, str):
            raise ValueError(
                f"caveat {data!r} needs the words of the source that support it: write "
                f'{{code: {data}, support: "<verbatim words of the source>"}}'
            )
        return data

    @field_validator("support")
    @classmethod
    def _one_line(cls, value: str) -> str:
        return normalise_space(value)


class Review(BaseModel):
    """One review of a rule: who, when, and against which version of the pack."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    by: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        description="who reviewed the rule"
    )
    date: dt.date = Field(description="when")
    version: Annotated[str, StringConstraints(pattern=r"^\d+\.\d+\.\d+$")] = Field(
        description="the pack version the reviewer had before them"
    )
    unreleased: bool = Field(
        default=False,
        description="the pack held changes not yet released under that version (the review "
        "covers them; the next release carries it)",
    )
    note: str | None = Field(default=None, description="what the reviewer said")


class Rule(BaseModel):
    """One claim of a source: when it applies, what it says, its caveats and its evidence."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    id: RuleId = Field(description="unique in the pack")
    status: Status = Field(
        description="draft (evaluated only when asked for), active, or retired (never evaluated)"
    )
    category: CategoryId = Field(description="one of the pack's categories")
    statement: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="the claim in the pack's own words, saying no more than the quote"
    )
    when: When = Field(description="the condition, or `always` for a background statement")
    caveats: list[CaveatUse] = Field(
        default_factory=list, description="the caveats that qualify the claim, with support"
    )
    evidence: Evidence
    reviews: list[Review] = Field(
        default_factory=list, description="the review trail, oldest first"
    )
    note: str | None = Field(default=None, description="for authors; not shown in results")

    @field_validator("statement")
    @classmethod
    def _one_line(cls, value: str) -> str:
        return normalise_space(value)

    @property
    def background(self) -> bool:
        """True for a statement that holds whatever the scenario (`when: always`)."""
        return self.when == "always"

    @property
    def caveat_codes(self) -> list[str]:
        return [c.code for c in self.caveats]

    @property
    def last_review(self) -> Review | None:
        return max(self.reviews, key=lambda r: r.date, default=None)


class RuleFile(BaseModel):
    """A rule file: `rules: [...]`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    rules: list[Rule] = Field(min_length=1)
