"""`caveat rules coverage`: which rules have cases on both sides, which source sentences are
encoded, and where each rule's review stands."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, Field

from ..cases import run_case
from ..knowledge_base import KnowledgeBase
from .check import review_due
from .library import library


class RuleCoverage(BaseModel):
    """One rule: the cases that show it applying and not applying, and its review."""

    rule: str
    status: str = Field(description="draft, active or retired")
    background: bool = Field(description="a statement that holds whatever the scenario")
    applies: list[str] = Field(description="cases where it applies as expected")
    near_misses: list[str] = Field(description="cases where it must not apply, and does not")
    covered: bool = Field(description="background, or both lists non-empty")
    reviewed: dt.date | None = Field(description="its last review")
    reviewed_by: str | None = Field(description="who reviewed it last")
    review: str = Field(
        description="its last review's date ('overdue' when past the pack's review interval), "
        "'never' or 'retired'"
    )


class SentenceCoverage(BaseModel):
    """One sentence of a source: the rules that encode it, or why it is left out."""

    source: str
    number: int
    text: str
    rules: list[str]
    left_out: str | None
    covered: bool


class Coverage(BaseModel):
    """Both tables, with their percentages (active rules only count)."""

    rules: list[RuleCoverage]
    sentences: list[SentenceCoverage]
    rule_percent: float
    source_percent: float


def review_status(kb: KnowledgeBase, index: int, today: dt.date) -> str:
    rule = kb.rules[index]
    last = rule.last_review
    if rule.status == "retired":
        return "retired"
    if last is None:
        return "never"
    due = review_due(last.date, kb.manifest.review_every_months)
    if due is not None and due < today:
        return f"{last.date}, overdue"
    return str(last.date)


def coverage(
    kb: KnowledgeBase,
    cases: Sequence[str | Path],
    include_draft: bool = False,
    today: dt.date | None = None,
) -> Coverage:
    """For each rule, the cases that show it applying and the near misses that show it not; for
    each claim sentence of the sources, the rules that encode it or why it is left out."""
    today = today or dt.date.today()
    applies: dict[str, list[str]] = {r.id: [] for r in kb.rules}
    misses: dict[str, list[str]] = {r.id: [] for r in kb.rules}
    for entry, case in library(cases):
        if case is None or case.expect is None:
            continue
        outcome = run_case(kb, entry, include_draft=include_draft)
        if outcome.result is None:
            continue
        applied = set(outcome.result.rules())
        for rule in case.expect.applies:
            if rule in applied and rule in applies:
                applies[rule].append(case.name)
        for rule in case.expect.not_applies:
            if rule not in applied and rule in misses:
                misses[rule].append(case.name)
    rows = [
        RuleCoverage(
            rule=r.id,
            status=r.status,
            background=r.background,
            applies=applies[r.id],
            near_misses=misses[r.id],
            covered=r.background or bool(applies[r.id] and misses[r.id]),
            reviewed=kb.reviewed[i],
            reviewed_by=r.last_review.by if r.last_review else None,
            review=review_status(kb, i, today),
        )
        for i, r in enumerate(kb.rules)
    ]
    live = [r for r in kb.rules if r.status != "retired"]
    sentences = []
    for source in kb.sources.values():
        encoded: dict[int, list[str]] = {}
        for rule in live:
            if rule.evidence.source == source.id:
                for s in source.sentences_of(rule.evidence.quote):
                    encoded.setdefault(s.number, []).append(rule.id)
        reasons = {
            s.number: e.reason
            for e in source.record.not_encoded
            for s in source.sentences_of(e.quote)
        }
        for s in source.sentences:
            rules = encoded.get(s.number, [])
            sentences.append(
                SentenceCoverage(
                    source=source.id,
                    number=s.number,
                    text=s.text,
                    rules=rules,
                    left_out=reasons.get(s.number),
                    covered=bool(rules) or s.number in reasons,
                )
            )
    counted = {"active", "draft"} if include_draft else {"active"}
    conditional = [r for r in rows if not r.background and r.status in counted]
    rule_percent = 100.0 * sum(r.covered for r in conditional) / max(1, len(conditional))
    source_percent = 100.0 * sum(s.covered for s in sentences) / max(1, len(sentences))
    return Coverage(
        rules=rows, sentences=sentences, rule_percent=rule_percent, source_percent=source_percent
    )
