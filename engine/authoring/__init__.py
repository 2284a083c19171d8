"""The rule author's and reviewer's tools: check a pack, measure coverage, scaffold a rule, weigh a
change, record reviews and release versions.

`check_pack` finds every problem it can in a pack (each located at file:line:column); `coverage`
tells which rules have cases on both sides and which source sentences are encoded; `scaffold` starts
a rule from a source sentence; `diff` evaluates the case library against two versions of a pack;
`review` records a review in a rule file; `release` records a version once the pack passes.
"""

from .changes import CaseChange, Diff, diff, materialise
from .check import CheckReport, check_pack
from .coverage import Coverage, RuleCoverage, SentenceCoverage, coverage
from .governance import Refused, release, release_blockers, review
from .library import default_cases, library
from .scaffold import Scaffold, concepts_in, scaffold

__all__ = [
    "CaseChange",
    "CheckReport",
    "Coverage",
    "Diff",
    "Refused",
    "RuleCoverage",
    "Scaffold",
    "SentenceCoverage",
    "check_pack",
    "concepts_in",
    "coverage",
    "default_cases",
    "diff",
    "library",
    "materialise",
    "release",
    "release_blockers",
    "review",
    "scaffold",
]
