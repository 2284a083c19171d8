"""The population report as one self-contained HTML page (no script, no external asset): what a
medication-safety pharmacist reads to plan medication reviews.

Top to bottom: what was read and as of when; anything that failed or could not be read; the
patients to review (those with a `warning`-level statement: a limiting caveat, as the CDS Hooks
cards mark it), each with the statements and caveats behind it; the statements, caveats and
undetermined rules counted across the population; the codes the pack did not recognise, most
frequent first (what the pack should learn next); and what was counted but not kept.
"""

from __future__ import annotations

from html import escape
from typing import Any

from ..caveats import LIMITING
from ..knowledge_base import KnowledgeBase
from ..render import DISCLAIMER
from .tally import Count, PopulationSummary

MAX_REVIEW_ROWS = 2_000  # patients to review shown with their statements

STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2430;
background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.2em;margin:32px 0 8px;
border-bottom:2px solid #d7dce3;padding-bottom:4px}
.meta{color:#4a5565;margin:0 0 16px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:10px}
.card{background:#fff;border:1px solid #d7dce3;border-radius:6px;padding:10px 12px}
.card b{display:block;font-size:1.5em}
table{border-collapse:collapse;width:100%;background:#fff;margin:6px 0 12px}
th,td{border:1px solid #d7dce3;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.warn{border-left:4px solid #b45309}.bad{background:#fdecea;border:1px solid #e0a49c;
padding:10px 12px;border-radius:6px}
.cav{display:inline-block;border-radius:10px;padding:0 7px;margin:1px 2px;font-size:.85em;
background:#e7ecf3}.cav.limiting{background:#fde7c7;color:#7a3e00}
.disclaimer{color:#4a5565;font-size:.9em;margin-top:32px}
code{font-size:.92em}
@media print{body{background:#fff}main{max-width:none}.card,table{break-inside:avoid}}
"""


def render_page(
    summary: PopulationSummary,
    review: list[dict[str, Any]],
    kb: KnowledgeBase,
) -> str:
    """The report page: `review` holds the rows of the patients to review (the first
    MAX_REVIEW_ROWS)."""
    labels = {code: caveat.label for code, caveat in kb.caveats.items()}
    out: list[str] = []
    add = out.append
    s = summary
    title = f"Population review: {kb.manifest.title}"
    add(f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>")
    add('<meta name=viewport content="width=device-width,initial-scale=1">')
    add(f"<style>{STYLE}</style></head><body><main>")
    add(f"<h1>{escape(title)}</h1>")
    add(
        f"<p class=meta>Pack <code>{escape(kb.id)}</code> {escape(kb.version)} "
        f"(digest <code>{escape(kb.digest[:12])}</code>) · export <code>{escape(s.export)}</code>"
        f" · ages and durations as of <b>{s.as_of}</b> ({escape(s.as_of_from)}) · "
        f"{escape(s.engine)}, {s.partitions:,} partitions</p>"
    )
    subject = kb.vocabulary.label(kb.manifest.subject) if kb.manifest.subject else "subject"
    evaluated = "every patient" if s.everyone else f"patients on {subject}"
    add("<div class=cards>")
    for label, value in (
        ("patients in the export", s.patients),
        (f"on {subject}", s.patients_on_subject_drug),
        (f"evaluated ({evaluated})", s.patients_evaluated),
        ("to review (warning)", s.patients_with_warning),
        ("resources read", s.reading.resources_read),
        ("resources kept", s.reading.resources_kept),
        ("lines not readable", len(s.reading.unreadable) + s.reading.unreadable_more),
    ):
        add(f"<div class=card>{escape(label)}<b>{value:,}</b></div>")
    add("</div>")
    _problems(s, add)
    add(f"<h2 id=review>Patients to review ({s.patients_with_warning:,})</h2>")
    add(
        "<p>Patients with a statement that carries a limiting caveat (off-label, beyond the "
        "evidence, short-term, tolerance, ...), as the service's cards mark it "
        "<code>warning</code>.</p>"
    )
    if review:
        add(
            "<table><tr><th>patient</th><th>statements with a limiting caveat</th>"
            "<th>undetermined</th></tr>"
        )
        for row in review:
            limiting = [st for st in row["statements"] if st["indicator"] == "warning"]
            cells = "".join(
                f"<div>{escape(st['text'])} {_caveats(st['caveats'], labels)}</div>"
                for st in limiting
            )
            undecided = (
                "".join(
                    f"<div><code>{escape(u['rule'])}</code>: needs "
                    f"{escape(', '.join(u['needs']) or 'nothing said')}</div>"
                    for u in row["undetermined"]
                )
                or "none"
            )
            add(
                f"<tr class=warn><td><code>{escape(row['patient'])}</code></td><td>{cells}</td>"
                f"<td>{undecided}</td></tr>"
            )
        add("</table>")
        if s.patients_with_warning > len(review):
            add(
                f"<p>The first {len(review):,} of {s.patients_with_warning:,} are shown; the "
                "rows (--format jsonl, csv or parquet) have every one.</p>"
            )
    else:
        add("<p>None of the patients evaluated has a warning-level statement.</p>")
    add("<h2 id=rules>Statements across the population</h2>")
    _counts(s.rules, add, "statement", s.patients_evaluated)
    add("<h2 id=caveats>Caveats across the population</h2>")
    _counts(
        [Count(key=c.key, text=labels.get(c.key, c.key), patients=c.patients) for c in s.caveats],
        add,
        "caveat",
        s.patients_evaluated,
    )
    add("<h2 id=undetermined>What could not be decided</h2>")
    add(
        "<p>Rules that may apply, by patients; each row's <code>needs</code> says what would "
        "decide it.</p>"
    )
    _counts(s.undetermined, add, "statement it would make", s.patients_evaluated)
    add("<h2 id=unrecognised>Codes the pack should learn next</h2>")
    add(
        "<p>Conditions and medications of the patients evaluated that the pack did not "
        "recognise, by patients. Not recognised is never read as absent.</p>"
    )
    _counts(s.unrecognised, add, "words in the data", s.patients_evaluated)
    add("<h2 id=dropped>Counted, not kept</h2><table><tr><th>reason</th><th>resources</th></tr>")
    for reason, count in s.reading.dropped.items():
        add(f"<tr><td>{escape(reason)}</td><td class=n>{count:,}</td></tr>")
    add("</table>")
    add(f"<p class=disclaimer>{escape(DISCLAIMER)}</p></main></body></html>")
    return "\n".join(out)


def _caveats(codes: list[str], labels: dict[str, str]) -> str:
    return " ".join(
        f'<span class="cav{" limiting" if c in LIMITING else ""}">{escape(labels.get(c, c))}</span>'
        for c in codes
    )


def _counts(counts: list[Count], add: Any, what: str, total: int) -> None:
    if not counts:
        add("<p>None.</p>")
        return
    add(f"<table><tr><th>id</th><th>{escape(what)}</th><th>patients</th><th>share</th></tr>")
    for c in counts:
        share = f"{100 * c.patients / total:.0f}%" if total else ""
        add(
            f"<tr><td><code>{escape(c.key)}</code></td><td>{escape(c.text)}</td>"
            f"<td class=n>{c.patients:,}</td><td class=n>{share}</td></tr>"
        )
    add("</table>")


def _problems(s: PopulationSummary, add: Any) -> None:
    if s.failed_partitions:
        add("<h2 id=failed>Partitions that failed</h2><div class=bad>")
        for f in s.failed_partitions:
            add(
                f"<p><b>{escape(f.partition)}</b>: {_patients(f.patients)} without a row. "
                f"{escape(' / '.join(f.attempts))}</p>"
            )
        add("</div>")
    if s.patient_errors:
        add("<h2 id=errors>Patients not evaluated</h2><div class=bad>")
        for e in s.patient_errors[:200]:
            add(f"<p>{escape(e)}</p>")
        add("</div>")
    bad = s.reading.unreadable
    if bad:
        add("<h2 id=unreadable>Lines that could not be read</h2>")
        add("<table><tr><th>file</th><th>line</th><th>why</th></tr>")
        for u in bad:
            add(
                f"<tr><td>{escape(u.file)}</td><td class=n>{u.line:,}</td>"
                f"<td>{escape(u.reason)}</td></tr>"
            )
        add("</table>")
        if s.reading.unreadable_more:
            add(f"<p>and {s.reading.unreadable_more:,} more.</p>")


def _patients(count: int | None) -> str:
    return "its patients" if count is None else f"{count:,} patients"
