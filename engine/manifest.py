"""The pack manifest (pack.yaml): what the pack is, where its parts are, who stands behind it, and
its releases."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from .codelists import SubjectCode
from .rules import CategoryId

MANIFEST = "pack.yaml"


class Category(BaseModel):
    """A group of statements, in the order results list them."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    id: CategoryId = Field(description="what rules name as their category")
    label: str = Field(description="the heading people read")


class ChangelogEntry(BaseModel):
    """One release of the pack."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    version: str = Field(description="the version released")
    date: dt.date | None = Field(default=None, description="when")
    changes: list[str] = Field(min_length=1, description="what changed, for reviewers")
    digest: str | None = Field(
        default=None,
        description="the pack's digest as released: what results report as knowledge_base.digest",
    )


class Manifest(BaseModel):
    """pack.yaml: what the pack is, where its parts are, who stands behind it, and its releases."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    version: Annotated[str, StringConstraints(pattern=r"^\d+\.\d+\.\d+$")]
    title: str
    description: str | None = None
    subject: str | None = Field(default=None, description="the drug concept the pack is about")
    subject_codes: list[SubjectCode] = Field(
        default_factory=list,
        description="the subject drug by code (RxNorm ingredient, ATC), each bound to the subject "
        "concept: how a service tells which orders concern the pack",
    )
    categories: list[Category] = Field(min_length=1)
    concepts: str = "concepts.yaml"
    caveats: str = "caveats.yaml"
    sources: list[str] = Field(min_length=1)
    rules: str = "rules"
    code_lists: list[str] = Field(
        default_factory=list, description="code-list files (relative paths), each citing its source"
    )
    cases: str | None = Field(default=None, description="the pack's case library, relative path")
    publisher: str | None = Field(default=None, description="who publishes the pack")
    authors: list[str] = Field(default_factory=list, description="who wrote the rules")
    reviewers: list[str] = Field(default_factory=list, description="who reviewed the pack")
    approved: dt.date | None = Field(
        default=None, description="when the pack was approved for use (none: not approved)"
    )
    approved_by: str | None = Field(default=None, description="who approved it")
    last_reviewed: dt.date | None = Field(default=None, description="the last review of the pack")
    review_every_months: int | None = Field(
        default=None, ge=1, le=120, description="how often the pack and its rules are reviewed"
    )
    next_review: dt.date | None = Field(
        default=None, description="when the pack is next due for review (instead of an interval)"
    )
    copyright: str | None = Field(
        default=None, description="copyright and licence of the source text and of the pack"
    )
    changelog: list[ChangelogEntry] = Field(default_factory=list)
