"""`caveat rules check`: every problem of a pack, each at file:line:column, in one run.

What loading reports (schema, references, quotes and caveat support not in the source, duplicate
keys), and what only an author needs to know: conditions that can never hold, duplicate claims,
code bindings the terminology contradicts, wording the source does not support (a dropped hedge, an
added intensifier), a version that did not move with its pack, reviews that are overdue, and cases
that name rules that are gone, retired or never exercised.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..codelists import code_bindings
from ..compiler import Expander, Program, TooComplex
from ..conditions import _ConceptTest, describe, when_nodes
from ..errors import CompileError, PackProblem
from ..evidence import normalise_space
from ..pack import MANIFEST, PackContents, read_pack
from ..rules import Rule
from ..vocabulary import Vocabulary
from ..wording import added_intensifiers, hedges_in
from ..yamlfile import Mark, PosDict, locate
from .bindings import check_bindings
from .library import default_cases, expected, library, mentions
from .problems import mark_of, problem

Add = Callable[[PackProblem], None]

HEDGED = "hedged"  # the caveat code that marks a hedged claim


@dataclass
class CheckReport:
    """What `check_pack` found."""

    problems: list[PackProblem] = field(default_factory=list)
    cases_dir: Path | None = None

    @property
    def errors(self) -> list[PackProblem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[PackProblem]:
        return [p for p in self.problems if p.severity == "warning"]


def check_pack(
    root: str | Path,
    cases: Sequence[str | Path] | None = None,
    today: dt.date | None = None,
) -> CheckReport:
    """Every problem of a pack: what loading reports, and what only an author needs to know.
    Reviews are judged overdue as of `today` (the date today by default)."""
    root = Path(root)
    contents = read_pack(root)
    report = CheckReport(problems=list(contents.problems))
    add = report.problems.append

    if contents.manifest is None:
        return report
    vocab = Vocabulary(contents.concepts, contents.ambiguous, code_bindings(contents.code_lists))
    sites = {rid: site.file for rid, site in contents.sites.items()}
    _check_conditions(contents, vocab, add)
    _check_duplicates(contents, vocab, add)
    check_bindings(contents, vocab, add)
    _check_wording(contents, add)
    _check_version(contents, root, add)
    _check_reviews(contents, root, today or dt.date.today(), add)
    if not contents.errors:
        try:
            Program(contents.rules, vocab, sites)
        except CompileError as exc:
            report.problems.extend(exc.problems)
    report.cases_dir = _check_cases(contents, root, cases, add)
    report.problems.sort(key=lambda p: (p.severity != "error", p.file, p.line, p.column))
    return report


def _rel(root: Path, path: Path) -> str:
    try:
        return str(path.relative_to(root.parent))
    except ValueError:
        return str(path)


# -- conditions -----------------------------------------------------------------------------------


def _check_conditions(contents: PackContents, vocab: Vocabulary, add: Add) -> None:
    """Conditions, or parts of them, that can never hold."""
    expander = Expander(vocab)
    for rule in contents.rules:
        if rule.when == "always":
            continue
        site = contents.sites[rule.id]
        when_data = site.data.get("when") if isinstance(site.data, dict) else None
        fallback = site.data.value_marks.get("when") if isinstance(site.data, PosDict) else None
        reported: list[Any] = []
        for node, data in when_nodes(rule.when, when_data):
            if any(_inside(node, r) for r in reported):
                continue
            try:
                never = not expander.t(node)
            except TooComplex:  # the compiler reports it
                continue
            if never:
                reported.append(node)
                whole = node is rule.when
                what = "the condition" if whole else f"the part {describe(node)!r}"
                add(
                    problem(
                        site.file,
                        mark_of(data, fallback),
                        f"rule {rule.id}: {what} can never hold",
                        "never-holds",
                    )
                )
            elif (
                isinstance(node, _ConceptTest)
                and node.excluded
                and not expander.members(node.concept, node.excluded)
            ):
                reported.append(node)


def _inside(node: Any, ancestor: Any) -> bool:
    return any(n is node for n, _ in when_nodes(ancestor, None))


def _condition_key(expander: Expander, rule: Rule) -> tuple[Any, ...]:
    truth = frozenset(expander.truth(rule.when))
    unknown = frozenset(expander.unknown(rule.when))
    return truth, unknown


def _check_duplicates(contents: PackContents, vocab: Vocabulary, add: Add) -> None:
    """Two rules with equivalent conditions that make the same claim."""
    expander = Expander(vocab)
    seen: dict[tuple[Any, ...], Rule] = {}
    for rule in contents.rules:
        try:
            condition = _condition_key(expander, rule)
        except TooComplex:
            continue
        for claim in (
            ("quote", normalise_space(rule.evidence.quote)),
            ("statement", normalise_space(rule.statement)),
        ):
            key = (condition, claim)
            first = seen.setdefault(key, rule)
            if first is not rule:
                site = contents.sites[rule.id]
                add(
                    problem(
                        site.file,
                        site.mark,
                        f"rule {rule.id} has the same conditions and {claim[0]} as rule "
                        f"{first.id}: merge them",
                        "duplicate-claim",
                    )
                )
                break


# -- wording --------------------------------------------------------------------------------------


def _check_wording(contents: PackContents, add: Add) -> None:
    """A hedge of the quote that the rule drops, and strength its statement adds."""
    for rule in contents.rules:
        site = contents.sites[rule.id]
        hedges = hedges_in(rule.evidence.quote)
        if hedges and HEDGED not in rule.caveat_codes:
            add(
                problem(
                    site.file,
                    locate(site.data, ("evidence", "quote")),
                    f"rule {rule.id}: its quote hedges ({', '.join(repr(h) for h in hedges)}) but "
                    f"the rule does not carry the `{HEDGED}` caveat: add it, with the hedge as its "
                    "support, and keep the hedge in the statement",
                    "hedge",
                    "warning",
                )
            )
        added = added_intensifiers(rule.statement, rule.evidence.quote)
        if added:
            add(
                problem(
                    site.file,
                    locate(site.data, ("statement",)),
                    f"rule {rule.id}: the statement says {', '.join(repr(w) for w in added)}, "
                    "which its quote does not: say no more than the source",
                    "intensifier",
                    "warning",
                )
            )


# -- versions and reviews -------------------------------------------------------------------------


def _check_version(contents: PackContents, root: Path, add: Add) -> None:
    manifest = contents.manifest
    assert manifest is not None
    name = _rel(root, root / MANIFEST)
    digest = contents.digest()
    entry = next((e for e in manifest.changelog if e.version == manifest.version), None)
    version_at = locate(contents.manifest_data, ("version",))
    if entry is not None:
        index = manifest.changelog.index(entry)
        version_at = locate(contents.manifest_data, ("changelog", index)) or version_at
    if entry is None:
        message = (
            f"version {manifest.version} has no changelog entry: release it with "
            "`caveat rules release VERSION --change TEXT`"
        )
    elif entry.digest is None:
        message = f"the changelog entry of {manifest.version} records no digest: add `{digest}`"
    elif entry.digest != digest:
        message = (
            f"the pack changed but its version did not: {manifest.version} was released as "
            f"{entry.digest[:12]}, the pack is now {digest[:12]}; release a new version with "
            "`caveat rules release VERSION --change TEXT`"
        )
    else:
        return
    add(problem(name, version_at, message, "version"))


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` later (the month's last day where it has fewer days)."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return day.replace(
        year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1])
    )


def review_due(last: dt.date | None, every: int | None) -> dt.date | None:
    """When a review falls due: `every` months after the last one (None: no schedule)."""
    return add_months(last, every) if last is not None and every is not None else None


def _check_reviews(contents: PackContents, root: Path, today: dt.date, add: Add) -> None:
    """The pack's and the active rules' reviews that are missing or overdue as of `today`."""
    manifest = contents.manifest
    assert manifest is not None
    name = _rel(root, root / MANIFEST)
    every = manifest.review_every_months
    due = manifest.next_review or review_due(manifest.last_reviewed, every)
    if manifest.last_reviewed is None:
        message = "the pack records no review: set `last_reviewed` once it has been reviewed"
        add(problem(name, mark_of(contents.manifest_data), message, "review", "warning"))
    elif due is not None and due < today:
        message = f"the pack's review is overdue: it was due on {due} (as of {today})"
        at = locate(contents.manifest_data, ("last_reviewed",))
        add(problem(name, at, message, "review", "warning"))
    for rule in contents.rules:
        if rule.status != "active":
            continue
        site = contents.sites[rule.id]
        last = rule.last_review
        if last is None:
            message = (
                f"rule {rule.id} has never been reviewed: `caveat rules review {rule.id} --by NAME`"
            )
            add(problem(site.file, site.mark, message, "review", "warning"))
            continue
        rule_due = review_due(last.date, every)
        if rule_due is not None and rule_due < today:
            message = (
                f"rule {rule.id}: its review is overdue (last {last.date} by {last.by}, due "
                f"{rule_due}, as of {today})"
            )
            add(problem(site.file, locate(site.data, ("reviews",)), message, "review", "warning"))


# -- the case library -----------------------------------------------------------------------------


def _check_cases(
    contents: PackContents, root: Path, cases: Sequence[str | Path] | None, add: Add
) -> Path | None:
    """Cases that expect what cannot be, placeholders, and rules no case exercises."""
    paths = [Path(p) for p in cases] if cases else default_cases(root)
    if not paths:
        return None
    rules = {r.id: r for r in contents.rules}
    mentioned: set[str] = set()
    for entry, case in library(paths):
        if case is None:
            continue
        at = Mark(entry.line, 1) if entry.line else None
        mentioned |= mentions(case)
        if (case.description or "").startswith("TODO"):
            add(
                problem(
                    entry.path,
                    at,
                    f"case {case.name}: placeholder description left by `caveat rules new`",
                    "placeholder",
                    "warning",
                )
            )
        for rule_id in sorted(mentions(case)):
            rule = rules.get(rule_id)
            if rule is None and rule_id in contents.scaffolded:
                continue  # its placeholders are reported
            if rule is None:
                message = f"case {case.name}: its expectations name rule {rule_id!r}, which the "
                message += "pack does not have"
                add(problem(entry.path, at, message, "unknown-rule"))
            elif rule.status == "retired":
                expects_it = rule_id in expected(case)
                message = f"case {case.name}: rule {rule_id} is retired and never evaluated; "
                message += "the case still expects it" if expects_it else "drop it from not_applies"
                add(
                    problem(
                        entry.path, at, message, "retired", "error" if expects_it else "warning"
                    )
                )
    for rule in contents.rules:
        if rule.background or rule.id in mentioned or rule.status == "retired":
            continue
        site = contents.sites[rule.id]
        add(
            problem(
                site.file,
                site.mark,
                f"rule {rule.id}: no case exercises it (add a case where it applies and a "
                f"near miss where it must not; `caveat rules new` scaffolds both)",
                "unexercised",
                "warning",
            )
        )
    return paths[0]
