"""The case library in the pack book: every case run once, as `caveat rules test` runs it, and
each expectation that names a rule kept under that rule with what came of it, so that a rule's
card shows the cases where it must apply, must not, or must be undetermined, and their outcome."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..cases import run_case
from ..knowledge_base import KnowledgeBase
from .book_words import scenario_words
from .library import library


@dataclass
class CaseUse:
    """One case's expectation about one rule, and what came of it."""

    case: str
    path: str
    where: str
    description: str | None
    inputs: str
    expected: str  # applies, does not apply, undetermined
    caveats: list[str]
    actual: str  # applies, does not apply, undetermined, not evaluated
    held: bool
    status: str  # the whole case's outcome: pass, fail, error
    problems: list[str]


@dataclass
class CaseRun:
    """The case library, run: counts, each rule's cases, and the cases that could not be run."""

    counts: dict[str, int] = field(
        default_factory=lambda: {"pass": 0, "fail": 0, "error": 0, "evaluated": 0}
    )
    uses: dict[str, list[CaseUse]] = field(default_factory=dict)
    broken: list[tuple[str, str, list[str]]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def run_library(kb: KnowledgeBase, paths: Sequence[Path], include_draft: bool) -> CaseRun:
    """Run every case of the library once, as `caveat rules test` does, and sort each
    expectation that names a rule under that rule."""
    out = CaseRun(uses={r.id: [] for r in kb.rules})
    for entry, case in library(paths) if paths else []:
        outcome = run_case(kb, entry, include_draft=include_draft)
        out.counts[outcome.status] += 1
        where = f"{outcome.path}:{outcome.line}" if outcome.line else outcome.path
        if case is None or outcome.status == "error":
            out.broken.append((outcome.case, where, outcome.problems))
        if case is None or case.expect is None:
            continue
        e, result = case.expect, outcome.result
        applied = {s.rule: s for s in result.statements} if result else {}
        undetermined = {u.rule for u in result.undetermined} if result else set()
        wanted = [(r, "applies") for r in dict.fromkeys([*e.applies, *e.caveats])]
        wanted += [(r, "does not apply") for r in e.not_applies]
        wanted += [(r, "undetermined") for r in e.undetermined]
        for rule, expected in wanted:
            if rule not in out.uses:
                continue
            actual = (
                "not evaluated"
                if result is None
                else "applies"
                if rule in applied
                else "undetermined"
                if rule in undetermined
                else "does not apply"
            )
            codes = e.caveats.get(rule, []) if expected == "applies" else []
            have = [c.code for c in applied[rule].caveats] if rule in applied else []
            out.uses[rule].append(
                CaseUse(
                    case=outcome.case,
                    path=outcome.path,
                    where=where,
                    description=case.description,
                    inputs=scenario_words(case.scenario),
                    expected=expected,
                    caveats=codes,
                    actual=actual,
                    held=_held(expected, actual) and all(c in have for c in codes),
                    status=outcome.status,
                    problems=outcome.problems,
                )
            )
    return out


def _held(expected: str, actual: str) -> bool:
    """Whether a rule came out as a case expects ('must not apply' is met by a rule left
    undetermined too: it is not among the statements)."""
    if expected == "does not apply":
        return actual in ("does not apply", "undetermined")
    return actual == expected
