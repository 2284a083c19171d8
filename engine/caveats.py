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
