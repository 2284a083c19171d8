"""Every error the engine raises on purpose, in one place.

Each error names where the problem is (a field path in a scenario, or file:line:column in a pack)
and, where there is one, the likely fix. Callers catch `CaveatError` for anything the engine
refuses.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel


class Problem(BaseModel):
    """One problem with a scenario: where it is and what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class PackProblem(BaseModel):
    """One problem with a knowledge pack, located in a file."""

    file: str
    line: int = 0
    column: int = 0
    message: str
    severity: Literal["error", "warning"] = "error"
    code: str = "pack"

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where += f":{self.line}:{self.column}"
        tag = "" if self.severity == "error" else "warning: "
        return f"{where}: {tag}{self.message}"


class CaveatError(Exception):
    """Base class of every error the engine raises on purpose."""


class ScenarioError(CaveatError, ValueError):
    """A scenario is malformed. `problems` lists every problem with its field path."""

    def __init__(self, problems: Iterable[Problem], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        head = f"invalid scenario{f' in {source}' if source else ''}"
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{head} ({len(self.problems)} problem(s)):\n{lines}")


class PackError(CaveatError):
    """A knowledge pack cannot be loaded. `problems` lists every error with file:line:column."""

    def __init__(self, problems: Iterable[PackProblem], pack: str | None = None) -> None:
        self.problems = list(problems)
        errors = [p for p in self.problems if p.severity == "error"]
        head = f"knowledge pack{f' {pack}' if pack else ''} has {len(errors)} error(s)"
        lines = "\n".join(f"  {p}" for p in errors)
        super().__init__(f"{head}:\n{lines}")


class CompileError(PackError):
    """A pack is valid but cannot be compiled within durable_rules' limits."""


class EngineError(CaveatError):
    """durable_rules reported a failure while evaluating; the evaluation was abandoned whole."""


class CapacityError(EngineError):
    """A scenario needs more of durable_rules than it can hold (too many properties in its one
    fact): nothing was evaluated. `evaluate` reports it as a ScenarioError, a fault of the input."""


class BatchError(CaveatError, RuntimeError):
    """A batch could not go on: a worker process died, or failed outside any one case (a case's
    own bad input never stops a batch)."""
