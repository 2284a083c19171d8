"""The rule cards of the pack book: each rule's statement, category and status, its condition in
plain words, its caveats with their meanings and the words behind them, its evidence and basis,
its review trail, and the cases that show it applying and not applying, with their outcome."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path

from ..knowledge_base import KnowledgeBase
from ..rules import Rule
from .book_cases import CaseUse
from .book_source import quote_html, rule_sentences, sentence_anchor
from .book_words import BASIS_WORDS, condition_html

SHOWN = 4  # the passing cases of each kind shown in full on a card; the others are named


def badge(text: str, kind: str = "") -> str:
    return f'<span class="badge {escape(kind)}">{escape(text)}</span>'


def ref(rule: str, numbers: dict[str, str]) -> str:
    return f'<a class="ref" href="#rule-{escape(rule)}">{escape(numbers.get(rule, rule))}</a>'


def bullets(items: Sequence[str]) -> str:
    return f"<ul>{''.join(f'<li>{i}</li>' for i in items)}</ul>" if items else ""


def card_html(
    kb: KnowledgeBase, rule: Rule, numbers: dict[str, str], review: str, uses: list[CaseUse]
) -> str:
    """A rule as a card, id="rule-<id>"."""
    index = kb.rule_index[rule.id]
    category = kb.categories[rule.category].label if rule.category in kb.categories else ""
    meta = (
        f"<code>{escape(rule.id)}</code> · {escape(category)} · {badge(rule.status, rule.status)}"
    )
    facts = [("Applies when", f'<div class="cond-text">{condition_html(kb, rule.when)}</div>')]
    caveats = "".join(
        f"<li><b>{escape(c.label)}</b> <code>{escape(c.code)}</code>: {escape(c.text)}"
        f'<br><span class="small">the source’s words:</span> '
        f'<q class="support-words">{escape(c.support)}</q></li>'
        for c in kb.caveat_notes[index]
    )
    facts.append(("Caveats", f'<ul class="caveats">{caveats}</ul>' if caveats else "none"))
    places = rule_sentences(kb, rule)
    where = ", ".join(
        f'<a href="#{escape(sentence_anchor(s, n))}">sentence {n}</a>' for s, n in places
    )
    source = kb.sources.get(rule.evidence.source)
    title = escape(source.record.title) if source else escape(rule.evidence.source)
    found = where or '<span class="bad-text">the quote is not found in the source</span>'
    facts.append(
        (
            "Evidence",
            f"<blockquote>{quote_html(kb, rule)}</blockquote>"
            f'<span class="small">{title}, {found}</span>',
        )
    )
    basis = BASIS_WORDS.get(rule.evidence.basis, rule.evidence.basis)
    facts.append(("Basis", f"<code>{escape(rule.evidence.basis)}</code>: {escape(basis)}"))
    facts.append(("Status", lifecycle_html(rule, review)))
    if rule.note:
        facts.append(("Author’s note", escape(rule.note)))
    rows = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    back = (
        f'<p class="back screen-only"><a href="#{escape(sentence_anchor(*places[0]))}">'
        f"↑ back to sentence {places[0][1]} of the source</a></p>"
        if places
        else ""
    )
    return (
        f'<article class="card {escape(rule.status)}" id="rule-{escape(rule.id)}">'
        f'<header><span class="num">{escape(numbers[rule.id])}</span>'
        f"<div><h4>{escape(rule.statement)}</h4>"
        f'<p class="meta">{meta}</p></div></header><dl>{rows}</dl>'
        f'<div class="card-cases"><h5>Cases</h5>{case_tables_html(rule, uses)}</div>'
        f"{back}</article>"
    )


def lifecycle_html(rule: Rule, review: str) -> str:
    """Its lifecycle status, its last review (overdue?) and its review trail."""
    status = {
        "active": "active: evaluated",
        "draft": "draft: evaluated only when drafts are asked for",
        "retired": "retired: never evaluated",
    }[rule.status]
    late = review.endswith("overdue") or (review == "never" and rule.status == "active")
    said = f"{escape(status)}; last review: {escape(review)}"
    if late:
        said += f" {badge('review due', 'bad')}"
    trail = [
        f"{r.date}, {escape(r.by)}, against version {escape(r.version)}"
        + (" (with changes not yet released)" if r.unreleased else "")
        + (f": <span class='small'>{escape(r.note)}</span>" if r.note else "")
        for r in rule.reviews
    ]
    return said + (bullets(trail) if trail else "<br>no review recorded")


def _outcome(use: CaseUse) -> str:
    return "pass" if use.held else "error" if use.status == "error" else "fail"


def _row(use: CaseUse) -> str:
    got = escape(use.actual)
    if use.expected == "does not apply" and use.actual == "undetermined":
        got = "not applied: undetermined"
    if use.caveats:
        got += f" <span class='small'>with caveats {escape(', '.join(use.caveats))}</span>"
    described = f"<span class='small'>{escape(use.description)}</span>" if use.description else ""
    problems = "".join(
        f"<span class='small bad-text'>{escape(p)}</span>"
        for p in (use.problems if use.status in ("fail", "error") else [])
    )
    outcome = _outcome(use)
    return (
        f"<tr><td>{badge(outcome, outcome)}</td>"
        f"<td><b>{escape(use.case)}</b>{described}{problems}</td>"
        f"<td>{escape(use.inputs)}</td><td>{got}</td></tr>"
    )


def _chip(use: CaseUse) -> str:
    outcome = _outcome(use)
    said = " — ".join(x for x in (use.description, use.inputs) if x)
    mark = "✓" if outcome == "pass" else "✗"
    return (
        f'<span class="case-chip {outcome}" title="{escape(said)}">'
        f"{mark}&nbsp;{escape(use.case)}</span>"
    )


def case_tables_html(rule: Rule, uses: list[CaseUse]) -> str:
    """The cases that name the rule, by what they expect of it, each with its outcome: every
    failing one and the first SHOWN passing ones (the rule's own case file first) in full, the
    other passing ones by name."""
    if not uses:
        if rule.background:
            return (
                '<p class="small">None needed: a background statement holds whatever the '
                "scenario.</p>"
            )
        return '<p class="bad-text">No case names this rule.</p>'
    parts = []
    for expected, title in (
        ("applies", "must apply"),
        ("does not apply", "must not apply"),
        ("undetermined", "must be undetermined"),
    ):
        group = [u for u in uses if u.expected == expected]
        if not group:
            continue
        failing = [u for u in group if not u.held]
        passing = sorted((u for u in group if u.held), key=lambda u: Path(u.path).stem != rule.id)
        room = max(0, SHOWN - len(failing))
        full, rest = failing + passing[:room], passing[room:]
        count = f"{len(group)} case{'s' if len(group) != 1 else ''}, {len(passing)} passing"
        parts.append(
            f'<div class="group-title">Where it {escape(title)} '
            f'<span class="count">({count})</span></div>'
            '<table class="cases"><thead><tr><th>outcome</th><th>case</th>'
            "<th>the case gives</th><th>this rule</th></tr></thead>"
            f"<tbody>{''.join(_row(u) for u in full)}</tbody></table>"
        )
        if rest:
            parts.append(
                f'<p class="more">and {len(rest)} more, each passing: '
                f"{' '.join(_chip(u) for u in rest)}</p>"
            )
    return "".join(parts)
