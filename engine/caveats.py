"""The controlled vocabulary of caveat codes: how strong or how limited a statement's support is."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

CaveatCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]*$", max_length=40)]


class Caveat(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    code: CaveatCode
    label: Annotated[str, StringConstraints(min_length=1, max_length=60)]
    meaning: Annotated[str, StringConstraints(min_length=1)]


class CaveatFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    caveats: list[Caveat] = Field(min_length=1)
