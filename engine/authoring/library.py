"""The case library that goes with a pack (fixtures/cases), read once for every authoring tool."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..casefiles import read_cases
from ..cases import Case, split_case
from ..errors import ScenarioError


def default_cases(root: Path) -> list[Path]:
    """The case library that goes with a pack: fixtures/cases beside it, if there is one."""
    for candidate in (root.parent / "fixtures" / "cases", Path("fixtures") / "cases"):
        if candidate.is_dir():
            return [candidate]
    return []


def library(paths: Sequence[str | Path]) -> list[tuple[Any, Case | None]]:
    """The cases of a library, each with its expectations (None for an unreadable one)."""
    out: list[tuple[Any, Case | None]] = []
    for entry in read_cases(list(paths)):
        case = None
        if entry.error is None:
            try:
                case = split_case(entry.data, entry.name)
            except ScenarioError:
                case = None
        out.append((entry, case))
    return out


def expected(case: Case) -> set[str]:
    """The rules a case expects to apply, to carry caveats or to be undetermined."""
    if case.expect is None:
        return set()
    e = case.expect
    return {*e.applies, *e.caveats, *e.undetermined}


def mentions(case: Case) -> set[str]:
    """Every rule a case's expectations name."""
    if case.expect is None:
        return set()
    return expected(case) | set(case.expect.not_applies)
