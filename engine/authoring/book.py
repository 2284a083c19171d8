"""`caveat rules book`: the pack as one self-contained HTML page a clinician or pharmacist reads
top to bottom and signs: what the pack is and where its review stands, the source text with every
claim linked to the rules that encode it, each rule as a card (its condition in plain words, its
caveats and the words behind them, its evidence, its review trail and the cases that show it
applying and not applying, run now), the caveat codes, the vocabulary, and a sign-off block.

No script, no network, no external asset: the stylesheet is inline and every text of the pack
goes through html.escape. Everything shown is the pack's own data, read by the same functions the
other authoring tools use (coverage for sentences and reviews, check_pack for problems, the case
runner for outcomes)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from html import escape
from pathlib import Path

from ..knowledge_base import KnowledgeBase
from ..render import DISCLAIMER
from .book_cards import badge, bullets, card_html, ref
from .book_cases import run_library
from .book_source import source_html
from .book_style import CSS
from .book_vocab import vocabulary_html
from .check import check_pack, review_due
from .coverage import coverage


class Book:
    """The page, built section by section."""

    def __init__(
        self,
        kb: KnowledgeBase,
        cases: Sequence[Path],
        today: dt.date,
        include_draft: bool = False,
    ) -> None:
        self.kb, self.cases, self.today = kb, list(cases), today
        self.cover = coverage(kb, self.cases, include_draft=include_draft, today=today)
        self.check = check_pack(kb.root, self.cases or None, today=today)
        self.run = run_library(kb, self.cases, include_draft)
        rank = {c.id: i for i, c in enumerate(kb.manifest.categories)}
        self.ordered = sorted(kb.rules, key=lambda r: (rank.get(r.category, len(rank)), 0))
        self.numbers = {r.id: f"R{i}" for i, r in enumerate(self.ordered, start=1)}
        self.reviews = {row.rule: row for row in self.cover.rules}

    # -- the whole page ---------------------------------------------------------------------

    def html(self) -> str:
        kb, m = self.kb, self.kb.manifest
        title = f"{m.title}: the pack book ({kb.id} {kb.version})"
        nav = "".join(
            f'<a href="#{a}">{escape(t)}</a>'
            for a, t in (
                ("pack", "The pack"),
                ("source", "Source text"),
                ("rules", "Rules"),
                ("caveat-codes", "Caveats"),
                ("vocabulary", "Vocabulary"),
                ("sign-off", "Sign-off"),
            )
        )
        return (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            f'<header class="bar"><div class="inner"><span class="name">{escape(m.title)}'
            f"<small>{escape(kb.id)} {escape(kb.version)}</small></span>"
            f"<nav>{nav}</nav></div></header>\n<main>\n"
            + self.top()
            + self.source()
            + self.rules()
            + self.caveat_codes()
            + self.vocabulary()
            + self.sign_off()
            + "</main>\n</body>\n</html>\n"
        )

    # -- 1. the pack ------------------------------------------------------------------------

    def released(self) -> str:
        kb = self.kb
        entry = next((e for e in kb.manifest.changelog if e.version == kb.version), None)
        if kb.ref.released:
            return (
                f"{badge('released', 'good')} the digest is the one the changelog records for "
                f"{escape(kb.version)}"
            )
        if entry is None:
            said = f"version {escape(kb.version)} has no changelog entry"
        else:
            was = escape((entry.digest or "no digest")[:12])
            said = f"the pack has changed since {escape(kb.version)} was released (as {was}…)"
        return f"{badge('not released', 'bad')} {said}"

    def review_status(self) -> list[tuple[str, str]]:
        kb, m, today = self.kb, self.kb.manifest, self.today
        due = m.next_review or review_due(m.last_reviewed, m.review_every_months)
        if m.last_reviewed is None:
            pack = f"{badge('no review', 'bad')} the pack records no review"
        else:
            pack = f"last reviewed {m.last_reviewed}"
            if m.review_every_months:
                pack += f", every {m.review_every_months} months"
            if due is not None:
                late = due < today
                pack += f"; next due {due}" + (
                    f" {badge('overdue', 'bad')}" if late else f" {badge('in date', 'good')}"
                )
        if m.approved:
            approval = f"approved for use on {m.approved}"
            approval += f" by {escape(m.approved_by)}" if m.approved_by else ""
        else:
            approval = (
                f"{badge('not approved', 'warn')} no one has approved this pack for use "
                "(its manifest records no approval)"
            )
        late, never, last = [], [], []
        for rule in kb.rules:
            row = self.reviews[rule.id]
            if rule.status != "active":
                continue
            if row.review == "never":
                never.append(ref(rule.id, self.numbers))
            elif row.review.endswith("overdue"):
                late.append(ref(rule.id, self.numbers))
            if rule.last_review is not None:
                last.append((rule.last_review.date, rule.last_review.by))
        active = sum(r.status == "active" for r in kb.rules)
        rules = f"{active - len(never)} of {active} active rules reviewed"
        if last:
            date, by = max(last)
            rules += f"; the latest review: {date}, by {escape(by)}"
        if late:
            rules += f"<br>{badge('overdue', 'bad')} {' '.join(late)}"
        if never:
            rules += f"<br>{badge('never reviewed', 'bad')} {' '.join(never)}"
        if not late and not never:
            rules += f" {badge('none overdue', 'good')}"
        return [("Approval", approval), ("Pack review", pack), ("Rule reviews", rules)]

    def top(self) -> str:
        kb, m, cover, run = self.kb, self.kb.manifest, self.cover, self.run
        people = [
            ("Publisher", escape(m.publisher or "not recorded")),
            ("Authors", escape(", ".join(m.authors) or "not recorded")),
            ("Reviewers", escape(", ".join(m.reviewers) or "not recorded")),
        ]
        errors, warnings = self.check.errors, self.check.warnings
        checks = (
            f"<code>caveat rules check</code>: {len(errors)} error(s), {len(warnings)} warning(s)"
        )
        checks += " " + (badge("fails", "bad") if errors else badge("passes", "good"))
        checks += bullets([escape(str(p)) for p in self.check.problems])
        if self.cases:
            where = ", ".join(escape(str(p)) for p in self.cases)
            c = run.counts
            cases = (
                f"{run.total} cases from {where}: {c['pass']} pass, {c['fail']} fail, "
                f"{c['error']} could not be run"
                + (f", {c['evaluated']} without expectations" if c["evaluated"] else "")
            )
            failing = c["fail"] or c["error"]
            cases += " " + (badge("failing", "bad") if failing else badge("all pass", "good"))
        else:
            cases = f"{badge('none', 'bad')} no case library found (give --cases)"
        covered = (
            f"rules: {cover.rule_percent:.1f}% have a case where they apply and one where they "
            f"must not; source: {cover.source_percent:.1f}% of sentences encoded or left out "
            "with a reason"
        )
        facts = [
            ("Pack", f"<code>{escape(kb.id)}</code>, version {escape(kb.version)}"),
            ("Digest", f"<code class='url'>{escape(kb.digest)}</code>"),
            ("Released", self.released()),
            *people,
            *self.review_status(),
            ("Checks", checks),
            ("Cases", cases),
            ("Coverage", escape(covered)),
            ("This book", f"made on {self.today} from {len(kb.rules)} rules"),
        ]
        description = f"<p>{escape(m.description)}</p>" if m.description else ""
        categories = ", ".join(
            f'<a href="#category-{escape(c.id)}">{escape(c.label)}</a>'
            for c in m.categories
            if any(r.category == c.id for r in kb.rules)
        )
        toc = [
            (
                "1",
                '<a href="#pack">The pack</a>: <a href="#changelog">changelog</a>, '
                '<a href="#licence">source, attribution and licence</a>',
            ),
            ("2", '<a href="#source">The source text</a>, sentence by sentence'),
            (
                "3",
                f'<a href="#rules">The rules</a>: {categories}; '
                '<a href="#caveat-codes">caveat codes</a>',
            ),
            (
                "4",
                '<a href="#vocabulary">The vocabulary</a>: the concepts, their hierarchy and codes',
            ),
            ("5", '<a href="#sign-off">Sign-off</a>'),
        ]
        return (
            '<section id="pack">'
            f"<h1>{escape(m.title)}</h1>"
            f'<p class="subtitle">The knowledge pack <code>{escape(kb.id)}</code> '
            f"{escape(kb.version)}, set out for review: every claim of its source, the rules "
            "that encode them, and the words behind each caveat.</p>"
            f'<div class="disclaimer"><strong>{escape(DISCLAIMER)}</strong>{description}</div>'
            '<nav class="contents"><h3>Contents</h3><ul class="toc">'
            + "".join(f'<li><span class="part">Part {n}</span> {t}</li>' for n, t in toc)
            + "</ul></nav>"
            '<h2><span class="part">Part 1</span>The pack</h2>'
            f'<dl class="facts">{"".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)}</dl>'
            + self.changelog()
            + self.licence()
            + "</section>\n"
        )

    def changelog(self) -> str:
        kb = self.kb
        parts = ['<h3 id="changelog">Changelog</h3>']
        if not kb.manifest.changelog:
            parts.append('<p class="lead">No release recorded.</p>')
        for entry in kb.manifest.changelog:
            current = entry.version == kb.version
            mark = ""
            if current:
                mark = badge("this version", "good" if kb.ref.released else "bad")
            digest = f"<code>{escape(entry.digest[:16])}…</code>" if entry.digest else "no digest"
            parts.append(
                f'<div class="release"><h4>{escape(entry.version)} '
                f'<span class="small">{entry.date or "undated"} · digest {digest}</span>'
                f"{mark}</h4>"
                f'<ul class="changelog">{"".join(f"<li>{escape(c)}</li>" for c in entry.changes)}'
                "</ul></div>"
            )
        return "".join(parts)

    def licence(self) -> str:
        m = self.kb.manifest
        parts = ['<h3 id="licence">Source, attribution and licence</h3>']
        if m.copyright:
            parts.append(f"<p>{escape(m.copyright)}</p>")
        for source in self.kb.sources.values():
            r, a = source.record, source.record.attribution
            facts = [("Source", f"{escape(r.title)} (<code>{escape(r.id)}</code>)")]
            facts.append(("Work", escape(a.work)))
            if a.url:
                facts.append(("Published at", f"<span class='url'>{escape(a.url)}</span>"))
            licence = escape(a.license)
            if a.license_url:
                licence += f" (<span class='url'>{escape(a.license_url)}</span>)"
            facts.append(("Licence", licence))
            if a.changes:
                facts.append(("Changes", escape(a.changes)))
            facts.append(("Provenance", escape(r.provenance)))
            parts.append(
                f'<dl class="facts">{"".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)}</dl>'
            )
        return "".join(parts)

    # -- 2. the source ----------------------------------------------------------------------

    def source(self) -> str:
        rows = self.cover.sentences
        unencoded = [s for s in rows if not s.covered]
        legend = [
            (
                '<span class="sample"><span class="s claim">A claim sentence'
                '<span class="refs"><a class="ref" href="#rules">R1</a></span></span></span>',
                "a sentence the pack encodes; its chips lead to the rules that encode it",
            ),
            (
                '<span class="sample"><span class="quote">quoted words</span></span>',
                "the words a rule quotes as its evidence",
            ),
            (
                '<span class="sample"><mark class="support">caveat words</mark></span>',
                "the words behind a caveat (its support), followed by the caveat's name and rule",
            ),
            (
                '<span class="sample"><span class="s left-out">A sentence left out</span></span>',
                "a sentence that makes no claim to encode; the reason follows it",
            ),
            (
                '<span class="sample"><span class="sn">17</span></span>',
                "the sentence's number, as <code>caveat rules coverage</code> and "
                "<code>caveat rules new --sentence</code> count them",
            ),
        ]
        if unencoded:
            legend.append(
                (
                    '<span class="sample"><span class="s unencoded">Not encoded</span></span>',
                    "a sentence neither encoded nor left out with a reason",
                )
            )
        claims = sum(bool(s.rules) for s in rows)
        left = sum(bool(s.left_out) and not s.rules for s in rows)
        parts = [
            '<section id="source" class="part"><h2><span class="part">Part 2</span>'
            "The source text</h2>",
            f'<p class="lead">The text as written, line by line (spacing normalised): '
            f"{len(rows)} sentences, {claims} encoded by rules, {left} left out with a reason"
            f"{f', {len(unencoded)} neither' if unencoded else ''}. R numbers name the rule "
            "cards of Part 3.</p>",
            '<div class="legend">'
            + "".join(f"<div>{sample}</div><div>{said}</div>" for sample, said in legend)
            + "</div>",
        ]
        for source in self.kb.sources.values():
            parts.append(
                f'<h3 class="source-meta">{escape(source.record.title)} '
                f'<span class="small">(<code>{escape(source.id)}</code>)</span></h3>'
                f'<div class="source-text">{source_html(self.kb, source, rows, self.numbers)}'
                "</div>"
            )
        parts.append("</section>\n")
        return "\n".join(parts)

    # -- 3. the rules -----------------------------------------------------------------------

    def rules(self) -> str:
        kb = self.kb
        glance = []
        for rule in self.ordered:
            uses = self.run.uses[rule.id]
            yes = sum(u.expected == "applies" for u in uses)
            no = sum(u.expected == "does not apply" for u in uses)
            failing = sum(not u.held for u in uses)
            cases = "background" if rule.background and not uses else f"{yes} / {no}"
            if failing:
                cases += f" {badge(f'{failing} failing', 'bad')}"
            glance.append(
                f"<tr><td>{ref(rule.id, self.numbers)}</td><td>{escape(rule.statement)}</td>"
                f"<td>{escape(', '.join(kb.caveats[c].label for c in rule.caveat_codes))}</td>"
                f"<td>{badge(rule.status, rule.status)}</td>"
                f"<td class='n'>{escape(self.reviews[rule.id].review)}</td>"
                f"<td class='n'>{cases}</td></tr>"
            )
        parts = [
            '<section id="rules" class="part"><h2><span class="part">Part 3</span>The rules</h2>',
            '<p class="lead">One card per rule, grouped by category. A rule’s statement is the '
            "pack’s own words for a claim of the source; its caveats say how far that claim "
            "reaches, each with the source’s words behind it.</p>",
            "<h3>At a glance</h3>",
            '<table class="glance"><thead><tr><th>rule</th><th>statement</th><th>caveats</th>'
            "<th>status</th><th>last review</th><th>cases: apply / not</th></tr></thead>"
            f"<tbody>{''.join(glance)}</tbody></table>",
        ]
        for category in kb.manifest.categories:
            members = [r for r in self.ordered if r.category == category.id]
            if not members:
                continue
            parts.append(f'<h3 id="category-{escape(category.id)}">{escape(category.label)}</h3>')
            parts += [
                card_html(kb, r, self.numbers, self.reviews[r.id].review, self.run.uses[r.id])
                for r in members
            ]
        if self.run.broken:
            rows = "".join(
                f"<tr><td>{escape(name)}</td><td class='small'>{escape(where)}</td>"
                f"<td>{'<br>'.join(escape(p) for p in problems)}</td></tr>"
                for name, where, problems in self.run.broken
            )
            parts.append(
                '<h3 id="cases-not-run">Cases that could not be run</h3>'
                "<table><thead><tr><th>case</th><th>where</th><th>problem</th></tr></thead>"
                f"<tbody>{rows}</tbody></table>"
            )
        parts.append("</section>\n")
        return "\n".join(parts)

    # -- 4. caveat codes, the vocabulary, and the sign-off ----------------------------------

    def caveat_codes(self) -> str:
        kb = self.kb
        rows = []
        for code, caveat in kb.caveats.items():
            users = [r.id for r in self.ordered if code in r.caveat_codes]
            rows.append(
                f"<tr><td><b>{escape(caveat.label)}</b><br><code>{escape(code)}</code></td>"
                f"<td>{escape(caveat.meaning)}</td>"
                f"<td>{' '.join(ref(r, self.numbers) for r in users) or 'no rule'}</td></tr>"
            )
        return (
            '<section id="caveat-codes"><h3>Caveat codes</h3>'
            '<p class="lead">What each caveat means, in the source’s terms, and the rules that '
            "carry it.</p>"
            '<table class="caveat-table"><thead><tr><th>caveat</th><th>meaning</th>'
            "<th>rules</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></section>\n"
        )

    def vocabulary(self) -> str:
        return (
            '<section id="vocabulary" class="part"><h2><span class="part">Part 4</span>'
            "The vocabulary</h2>"
            '<p class="lead">What a scenario’s conditions and medications are recognised as: '
            "each concept by its label, its other names and its codes (ICD-10-CM descriptions "
            "from the ICD-10-CM release the pack is checked against).</p>"
            + vocabulary_html(self.kb, self.numbers)
            + "</section>\n"
        )

    def sign_off(self) -> str:
        kb = self.kb
        rows = "".join(
            f"<tr><th>{escape(label)}</th><td></td></tr>"
            for label in ("Reviewed by (name, role)", "Signature", "Date")
        )
        return (
            '<section id="sign-off" class="part"><h2><span class="part">Part 5</span>'
            "Sign-off</h2>"
            f"<p>I have read this book of the knowledge pack <code>{escape(kb.id)}</code> version "
            f"{escape(kb.version)}, digest <code class='url'>{escape(kb.digest)}</code>, and "
            "checked its rules against its source text.</p>"
            f'<table class="sign">{rows}</table>'
            f'<p class="small">{escape(DISCLAIMER)}</p></section>\n'
        )


def build_book(
    kb: KnowledgeBase,
    cases: Sequence[Path] = (),
    *,
    today: dt.date | None = None,
    include_draft: bool = False,
) -> str:
    """The pack book of a loaded pack, as one HTML page."""
    return Book(kb, cases, today or dt.date.today(), include_draft).html()
