"""The CDS Hooks 2.0 wire format (https://cds-hooks.hl7.org/2.0/), as pydantic models: what a
client sends (a hook request, feedback) and what the service answers (discovery, cards), and the
FHIR OperationOutcome every refusal carries.

Requests are read strictly where the service depends on a value (hook, hookInstance, context ids,
feedback outcomes) and let through where the spec leaves room (extensions, unknown fields).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

# RFC 3339 section 5.6 date-time: a full date, a time, and a zone (Z or an offset)
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")
Id = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Words = Annotated[str, StringConstraints(max_length=10_000)]


class _In(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, frozen=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Coding(_Out):
    """A code in a code system (CDS Hooks' Coding: system, code, display)."""

    system: str | None = Field(default=None, description="the code system's URI")
    code: str = Field(description="the code")
    display: str | None = Field(default=None, description="words for people")


class CodingIn(_In):
    """A Coding as a client sends it (in an override reason)."""

    system: Annotated[str, StringConstraints(max_length=500)] | None = Field(
        default=None, description="the code system's URI"
    )
    code: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None, description="the code"
    )
    display: Annotated[str, StringConstraints(max_length=1000)] | None = Field(
        default=None, description="words for people"
    )


class FhirAuthorization(_In):
    """The OAuth 2.0 bearer token a client passes for the service to read its FHIR server."""

    access_token: Annotated[str, StringConstraints(min_length=1, max_length=10_000)] = Field(
        description="the access token (never logged, never echoed)"
    )
    token_type: Literal["Bearer"] = Field(description="fixed: Bearer")
    expires_in: int = Field(ge=0, description="the token's lifetime in seconds")
    scope: Annotated[str, StringConstraints(max_length=5000)] = Field(
        description="the scopes it grants"
    )
    subject: Annotated[str, StringConstraints(max_length=500)] = Field(
        description="the service's OAuth 2.0 client id at the client's authorization server"
    )
    patient: Id | None = Field(default=None, description="the patient the token is limited to")


class HookRequest(_In):
    """A call of a CDS service: the hook that fired, its context, and prefetched FHIR data."""

    hook: Annotated[str, StringConstraints(min_length=1, max_length=100)] = Field(
        description="the hook that fired, e.g. order-select"
    )
    hookInstance: Annotated[str, StringConstraints(min_length=1, max_length=100)] = Field(
        description="a UUID of this call"
    )
    fhirServer: AnyHttpUrl | None = Field(
        default=None, description="the base URL of the client's FHIR server"
    )
    fhirAuthorization: FhirAuthorization | None = Field(
        default=None, description="a bearer token for fhirServer"
    )
    context: dict[str, Any] = Field(description="hook-specific context (patientId, draftOrders)")
    prefetch: dict[str, Any] | None = Field(
        default=None, description="prefetched FHIR data by key; a key set to null means no data"
    )

    @field_validator("fhirAuthorization")
    @classmethod
    def _server_with_token(cls, value: Any, info: ValidationInfo) -> Any:
        # fhirServer is declared first, so it is validated (or failed) by now
        if value is not None and info.data.get("fhirServer") is None:
            raise ValueError("is given without fhirServer (the spec requires both together)")
        return value


class Source(_Out):
    """Where a card's guidance comes from: the pack, its version and digest, and a topic."""

    label: str = Field(description="the pack's title and version")
    topic: Coding | None = Field(default=None, description="the statement's category")
    extension: dict[str, Any] | None = Field(
        default=None, description="org.caveat.pack: the pack's id, version, digest, released"
    )


class Card(_Out):
    """One card: a summary under 140 characters, an indicator, markdown detail and a source."""

    uuid: str = Field(description="the card's id; feedback names it")
    summary: Annotated[str, StringConstraints(max_length=139)] = Field(
        description="one sentence, under 140 characters"
    )
    indicator: Literal["info", "warning", "critical"] = Field(
        description="info or warning (this service never sends critical)"
    )
    detail: str = Field(description="GitHub-flavoured markdown")
    source: Source
    overrideReasons: list[Coding] | None = Field(
        default=None, description="reasons a clinician may pick when dismissing the card"
    )
    extension: dict[str, Any] | None = Field(
        default=None, description="org.caveat.card: the rule id (or kind of info card)"
    )


class Cards(_Out):
    """A service's answer to a hook."""

    cards: list[Card] = Field(description="the cards, most important first")


class ServiceDescription(_Out):
    """One CDS service, as discovery lists it."""

    hook: str = Field(description="the hook it answers")
    id: str = Field(description="the {id} of /cds-services/{id}")
    title: str = Field(description="its name")
    description: str = Field(description="what it does")
    prefetch: dict[str, str] = Field(description="the FHIR queries it asks the client to run")
    usageRequirements: str | None = Field(default=None, description="preconditions of its use")


class Discovery(_Out):
    """GET /cds-services."""

    services: list[ServiceDescription]


class AcceptedSuggestion(_In):
    """A suggestion the user accepted."""

    id: Id = Field(description="the suggestion's uuid")


class OverrideReason(_In):
    """Why a user dismissed a card: a coded reason, a comment, or both."""

    reason: CodingIn | None = Field(default=None, description="the reason picked")
    userComment: Annotated[str, StringConstraints(max_length=2000)] | None = Field(
        default=None, description="free text"
    )


class FeedbackItem(_In):
    """What a user did with one card."""

    card: Id = Field(description="the card's uuid")
    outcome: Literal["accepted", "overridden"] = Field(description="accepted or overridden")
    acceptedSuggestions: list[AcceptedSuggestion] | None = Field(
        default=None, max_length=100, description="required when accepted"
    )
    overrideReason: OverrideReason | None = Field(default=None, description="when overridden")
    # not strict: the body is validated as parsed JSON, where a date-time can only be text, and
    # strict mode takes only datetime objects (it refused every timestamp a client could send)
    outcomeTimestamp: dt.datetime = Field(strict=False, description="when, in UTC (RFC 3339)")

    @field_validator("outcomeTimestamp", mode="before")
    @classmethod
    def _timestamp_text(cls, value: Any) -> Any:
        if not isinstance(value, str) or not RFC3339.fullmatch(value):
            raise ValueError(
                "a date-time is RFC 3339 text with a time zone, e.g. 2026-11-25T10:00:00Z"
            )
        return value

    @model_validator(mode="after")
    def _suggestions_when_accepted(self) -> FeedbackItem:
        if self.outcome == "accepted" and not self.acceptedSuggestions:
            raise ValueError("an accepted outcome needs acceptedSuggestions (the spec requires it)")
        if self.outcome == "accepted" and self.overrideReason is not None:
            raise ValueError("overrideReason is for an overridden outcome, not an accepted one")
        return self


class Feedback(_In):
    """POST /cds-services/{id}/feedback."""

    feedback: list[FeedbackItem] = Field(min_length=1, max_length=1000)


class Issue(_Out):
    """One problem of an OperationOutcome."""

    severity: Literal["fatal", "error", "warning", "information"] = "error"
    code: str = Field(description="a FHIR issue-type code: invalid, structure, security, ...")
    diagnostics: str = Field(description="what is wrong, and the likely fix")
    expression: list[str] | None = Field(
        default=None, description="where, e.g. 'context.patientId'"
    )


class OperationOutcome(_Out):
    """The FHIR resource every refusal carries: one issue per problem."""

    resourceType: Literal["OperationOutcome"] = "OperationOutcome"
    issue: list[Issue] = Field(min_length=1)


def outcome(*issues: tuple[str, str, str | None]) -> dict[str, Any]:
    """An OperationOutcome from (code, diagnostics, expression) triples, as JSON data."""
    return OperationOutcome(
        issue=[
            Issue(code=code, diagnostics=text, expression=[where] if where else None)
            for code, text, where in issues
        ]
    ).model_dump(exclude_none=True)
