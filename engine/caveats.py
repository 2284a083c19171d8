"""The controlled vocabulary of caveat codes: how strong or how limited a statement's support is."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

CaveatCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]*$", max_length=40)]


class Caveat(BaseModel):
    """A caveat code and what it means, said in the source's terms."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    code: CaveatCode = Field(description="what rules list, e.g. third-line")
    label: Annotated[str, StringConstraints(min_length=1, max_length=60)] = Field(
        description="a short label for people"
    )
    meaning: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="what the caveat says about a statement, adding nothing the source lacks"
    )


class CaveatFile(BaseModel):
    """caveats.yaml: `caveats: [...]`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    caveats: list[Caveat] = Field(min_length=1)


# How much a statement's caveats weigh, for a reader who must act on it (the CDS Hooks cards'
# indicator, the population report's patients to review): a limiting caveat says the use is
# off-label, investigational, third-line, short-term, of transient benefit, subject to tolerance,
# beyond the evidence, or needs an add-on; a qualifying one only qualifies the evidence.
LIMITING = frozenset(
    {
        "off-label",
        "investigational",
        "third-line",
        "tolerance",
        "short-term",
        "transient-benefit",
        "beyond-evidence",
        "add-on-required",
    }
)
QUALIFYING = frozenset({"not-placebo-controlled", "low-dose", "hedged"})


def indicator(codes: list[str]) -> str:
    """`warning` when any caveat limits the statement (or is unknown), else `info`."""
    return "warning" if any(c not in QUALIFYING for c in codes) else "info"
