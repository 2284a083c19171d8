"""The batch report as one HTML page a clinical reviewer reads: self-contained (no network, no
external asset), readable without its small script, and printable.

- The counts, with "without expectations" for cases that were only evaluated, and the cases
  rejected as bad input as they expected said as such.
- Failures and errors, each with what was expected and what came out.
- The cases against the rules: a row per case (its name, status, description and inputs: age,
  conditions, medications, therapy), a column per rule that occurs in the batch (every rule with
  --all-rules) headed by a short form of its statement. A cell says ✓ with the caveats of the
  statement, or ? with the fact that would decide it. The header row and the case column stay in
  view while the page scrolls. Each row expands (`<details>`, no script) to the full result:
  statements with their caveats, the source's words behind each caveat and the quote, undetermined
  rules with what they need, and what the pack does not cover or did not recognise.
- Filters by status, rule and caveat (the inline script; without it every row shows).
- The rules with the source's words behind their caveats, the statements by category, the caveats.
"""

from __future__ import annotations

from typing import Any

from .cleantext import html_text as _h
from .cleantext import url_part
from .render import DISCLAIMER
from .reports import CASE_STATUS, Row, Summary, Writer, _category_label

SHORT = 84  # characters of a statement in a column's header

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d1d1f;
background:#fafafb}
header,section{padding:0 24px}h1{font-size:1.5rem;margin:20px 0 4px}
h2{font-size:1.15rem;margin:28px 0 8px}
table{border-collapse:separate;border-spacing:0;margin:.5rem 0;background:#fff}
th,td{border-right:1px solid #d0d0d7;border-bottom:1px solid #d0d0d7;padding:.3rem .5rem;
vertical-align:top;text-align:left}
tr>:first-child{border-left:1px solid #d0d0d7}tr:first-child>*{border-top:1px solid #d0d0d7}
th{background:#f0f1f5}td.n{text-align:right;font-variant-numeric:tabular-nums}
.counts td{font-size:1.2rem;text-align:center}.bad{color:#b00020}.good{color:#0a7a32}
tr.fail td{background:#fdecee}tr.error td{background:#fff4e0}
.note{color:#555}code{background:#f0f1f5;padding:0 .2rem;border-radius:3px}
.support{font-size:12px;color:#6b4a00;margin:.1rem 0}
.matrix{font-size:12.5px;margin-left:24px}
.matrix thead th{position:sticky;top:0;z-index:2;min-width:8.5rem;max-width:10rem;
font-weight:600;background:#e9ebf1}
.matrix thead th small{display:block;font-weight:400;color:#555;font-family:monospace}
.matrix .case{position:sticky;left:0;z-index:1;background:#fff;min-width:19rem;max-width:23rem;
box-shadow:inset 0 -1px #d0d0d7,inset -1px 0 #d0d0d7}
.matrix thead th.case{z-index:3;background:#e9ebf1}
.matrix tr.fail .case{background:#fdecee}.matrix tr.error .case{background:#fff4e0}
.matrix td.cell{text-align:center}
.matrix td.applied{background:#e3f4e8}.matrix td.maybe{background:#f1ecfa;color:#4a2f85}
.cav{display:inline-block;font-size:11px;border-radius:8px;padding:0 5px;margin:1px;
background:#fde7c7;color:#7a3e00}
.need{display:block;font-size:11px}
.status{display:inline-block;font-size:11px;border-radius:8px;padding:0 6px;margin-left:4px;
background:#e7ecf3}.status.fail{background:#f6c2c9}.status.error{background:#ffd99a}
.status.pass{background:#c9ecd4}
.inputs{font-size:12px;color:#333}.desc{font-size:12px;color:#555;font-style:italic}
details{margin-top:4px}summary{cursor:pointer;color:#1f4fb5;font-size:12px}
details ul{margin:.2rem 0 .3rem 1.1rem;padding:0}details li{margin:.15rem 0}
.quote{font-size:12px;color:#444}
#filters{padding:8px 24px;margin:0 0 6px;background:#eef1f6;border-top:1px solid #d0d0d7;
border-bottom:1px solid #d0d0d7}#filters label{margin-right:10px}
@media print{.matrix thead th,.matrix .case{position:static}#filters{display:none}
details{display:block}}
"""

_SCRIPT = """
(function(){
var box=document.getElementById('filters');box.hidden=false;
var rows=[].slice.call(document.querySelectorAll('tr.case-row'));
var shown=document.getElementById('shown');
function on(name){return [].slice.call(box.querySelectorAll('input[name='+name+']:checked'))
.map(function(i){return i.value;});}
function apply(){var st=on('status'),rule=box.querySelector('#rule').value,
cav=box.querySelector('#caveat').value,n=0;
rows.forEach(function(r){var ok=st.indexOf(r.dataset.status)>=0&&
(!rule||(' '+r.dataset.rules+' ').indexOf(' '+rule+' ')>=0)&&
(!cav||(' '+r.dataset.caveats+' ').indexOf(' '+cav+' ')>=0);r.hidden=!ok;if(ok)n++;});
shown.textContent=n.toLocaleString()+' of '+rows.length.toLocaleString()+' cases shown';}
box.addEventListener('change',apply);apply();})();
"""

STATUS_WORDS = CASE_STATUS


def _anchor(case: str) -> str:
    return "case-" + url_part(case)


def short(statement: str) -> str:
    """A statement cut at a word to fit a column's header."""
    if len(statement) <= SHORT:
        return statement
    cut = statement[:SHORT].rsplit(" ", 1)[0].rstrip(",;:")
    return cut + "…"


def status_of(row: Row) -> str:
    return "rejected" if row.rejected else row.status


class HtmlWriter(Writer):
    """One self-contained page: no network, no external assets (see the module's docstring)."""

    def end(self, s: Summary) -> None:
        kb, ref = self.kb, self.kb.ref
        parts: list[str] = []
        add = parts.append
        add('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8"/>\n')
        add('<meta name="viewport" content="width=device-width,initial-scale=1"/>\n')
        add(f"<title>Batch report: {_h(ref.id)} {_h(ref.version)}</title>\n")
        add(f"<style>{_CSS}</style>\n</head>\n<body>\n<header>\n")
        add(f"<h1>Batch report: {_h(kb.manifest.title)} ({_h(ref.id)} {_h(ref.version)})</h1>\n")
        unreleased = "" if ref.released else " (changes not yet released under this version)"
        add(
            f'<p class="note">Pack digest <code>{_h(ref.digest[:12])}</code>{unreleased}. '
            f"{_h(DISCLAIMER)}</p>\n</header>\n<section>\n"
        )
        rejected = sum(1 for r in s.rows if r.rejected)
        cls = "bad" if s.exit_code else "good"
        add(
            '<table class="counts"><tr><th>cases</th><th>passed</th><th>failed</th>'
            "<th>errors</th><th>evaluated without expectations</th></tr>\n"
        )
        add(
            f'<tr class="{cls}"><td>{s.cases:,}</td><td>{s.status["pass"]:,}</td>'
            f"<td>{s.status['fail']:,}</td><td>{s.status['error']:,}</td>"
            f"<td>{s.status['evaluated']:,}</td></tr></table>\n"
        )
        if rejected:
            add(
                f'<p class="note">Of the cases passed, {rejected:,} expected their scenario to '
                "be rejected as bad input, and it was.</p>\n"
            )
        if s.interrupted:
            add(
                '<p class="bad">Interrupted: the report covers the cases done before the run '
                "was stopped.</p>\n"
            )
        self._problems(s, add)
        add("</section>\n")
        self._cases(s, add)
        add("<section>\n")
        self._rules(s, add)
        add("</section>\n")
        # (in CDATA, commented for HTML: the page stays well-formed XML as well as HTML)
        add(f"<script>//<![CDATA[{_SCRIPT}//]]></script>\n</body>\n</html>\n")
        self.text("".join(parts))

    def _problems(self, s: Summary, add: Any) -> None:
        for title, rows, key in (("Failures", s.failures, "fail"), ("Errors", s.errors, "error")):
            if not rows:
                continue
            add(
                f"<h2>{title} ({s.status[key]:,})</h2>\n<table>\n<tr><th>case</th><th>where</th>"
                f"<th>{'expected vs actual' if key == 'fail' else 'problem'}</th></tr>\n"
            )
            for row in rows:
                lines = list(row.problems) + ([s.actual(row)] if key == "fail" else [])
                detail = "<br/>".join(_h(p) for p in lines)
                add(
                    f'<tr class="{key}"><td><a href="#{_h(_anchor(row.case))}">{_h(row.case)}'
                    f"</a></td><td>{_h(row.where)}</td><td>{detail}</td></tr>\n"
                )  # (every failure and error listed has its row in the table below)
            add("</table>\n")
            if s.status[key] > len(rows):
                add(f'<p class="note">{s.status[key] - len(rows):,} more not listed.</p>\n')

    def _columns(self, s: Summary) -> list[Any]:
        kb = self.kb
        if self.all_rules:
            return list(kb.rules)
        seen = {rule for row in s.rows for rule in (*row.applied, *row.undetermined)}
        return [r for r in kb.rules if r.id in seen]

    def _cases(self, s: Summary, add: Any) -> None:
        kb = self.kb
        rules = self._columns(s)
        order = {"fail": 0, "error": 1}
        rows = sorted(s.rows, key=lambda r: order.get(r.status, 2))  # failures first
        add('<section>\n<h2 id="cases">Cases and the rules that apply to them</h2>\n')
        add(
            '<p class="note">✓ the rule applies (its caveats below the mark); ? it may apply, '
            "and the fact that would decide it is named. Each case opens to its full result. "
        )
        if not self.all_rules:
            add(
                f"Only the {len(rules):,} rules that apply or may apply to a case here have a "
                f"column (of the pack's {len(kb.rules):,}; --all-rules shows every one). "
            )
        if s.cases > len(s.rows):
            add(f"The table shows the first {len(s.rows):,} of {s.cases:,} cases.")
        add("</p>\n</section>\n")
        self._filters(s, rules, add)
        add('<table class="matrix">\n<thead><tr><th class="case">case</th>')
        for rule in rules:
            add(f'<th title="{_h(rule.statement)}">{_h(short(rule.statement))}')
            add(f"<small>{_h(rule.id)}</small></th>")
        add("</tr></thead>\n<tbody>\n")
        for row in rows:
            status = status_of(row)
            caveats = sorted({c for codes in row.applied.values() for c in codes})
            add(
                f'<tr class="case-row {_h(row.status)}" id="{_h(_anchor(row.case))}" '
                f'data-status="{_h(status)}" '
                f'data-rules="{_h(" ".join([*row.applied, *row.undetermined]))}" '
                f'data-caveats="{_h(" ".join(caveats))}">'
            )
            add(f'<td class="case">{self._case_cell(row, status)}</td>')
            for rule in rules:
                if rule.id in row.applied:
                    labels = "".join(
                        f'<span class="cav">{_h(self.label(c))}</span>'
                        for c in row.applied[rule.id]
                    )
                    add(f'<td class="cell applied" title="{_h(rule.id)}">✓<br/>{labels}</td>')
                elif rule.id in row.undetermined:
                    needs = row.needs.get(rule.id) or []
                    said = "".join(f'<span class="need">needs {_h(n)}</span>' for n in needs)
                    add(f'<td class="cell maybe" title="{_h(rule.id)}">?{said}</td>')
                else:
                    add('<td class="cell"></td>')
            add("</tr>\n")
        add("</tbody></table>\n")

    def _filters(self, s: Summary, rules: list[Any], add: Any) -> None:
        statuses = [k for k in STATUS_WORDS if any(status_of(r) == k for r in s.rows)]
        caveats = sorted({c for r in s.rows for codes in r.applied.values() for c in codes})
        add('<form id="filters" hidden="hidden">')
        for key in statuses:
            add(
                f'<label><input type="checkbox" name="status" value="{key}" checked="checked"/> '
                f"{_h(STATUS_WORDS[key])}</label>"
            )
        add(' <label>rule <select id="rule"><option value="">any</option>')
        for rule in rules:
            add(f'<option value="{_h(rule.id)}">{_h(rule.id)}</option>')
        add('</select></label> <label>caveat <select id="caveat"><option value="">any</option>')
        for code in caveats:
            add(f'<option value="{_h(code)}">{_h(self.label(code))}</option>')
        add('</select></label> <span id="shown" class="note"></span></form>\n')

    def _case_cell(self, row: Row, status: str) -> str:
        out = [
            f"<b>{_h(row.case)}</b>"
            f'<span class="status {_h(row.status)}">{_h(STATUS_WORDS[status])}</span>'
        ]
        if row.description:
            out.append(f'<div class="desc">{_h(row.description)}</div>')
        if row.inputs:
            out.append(f'<div class="inputs">{_h(row.inputs)}</div>')
        if row.rejected:
            said = "; ".join(row.problems)
            out.append(f'<div class="inputs">rejected as expected: {_h(said)}</div>')
        elif row.status in ("fail", "error") and row.problems:
            out.append(f'<div class="inputs bad">{"<br/>".join(_h(p) for p in row.problems)}</div>')
        if row.detail is not None:
            out.append(f"<details><summary>full result</summary>{self._detail(row.detail)}")
            out.append(f'<div class="note">{_h(row.where)}</div></details>')
        else:
            out.append(f'<div class="note">{_h(row.where)}</div>')
        return "".join(out)

    def _detail(self, detail: dict[str, Any]) -> str:
        out: list[str] = []
        statements = detail.get("statements") or []
        out.append(f"<div><b>Statements ({len(statements)})</b><ul>")
        for st in statements:
            caveats = "".join(
                f'<div class="support"><span class="cav">{_h(label)}</span> the source: '
                f"“{_h(support)}”</div>"
                for _, label, support in st["caveats"]
            )
            because = "; ".join(st.get("because") or [])
            out.append(
                f"<li>{_h(st['text'])} <code>{_h(st['rule'])}</code>{caveats}"
                f'<div class="quote">“{_h(st["quote"])}”</div>'
                + (f'<div class="note">because: {_h(because)}</div>' if because else "")
                + "</li>"
            )
        out.append("</ul></div>")
        undetermined = detail.get("undetermined") or []
        if undetermined:
            out.append(f"<div><b>Undetermined ({len(undetermined)})</b><ul>")
            for u in undetermined:
                needs = ", ".join(u["needs"]) or "nothing said"
                out.append(
                    f"<li>{_h(u['text'])} <code>{_h(u['rule'])}</code>"
                    f'<div class="note">would be decided by: {_h(needs)}</div></li>'
                )
            out.append("</ul></div>")
        for key, title in (("not_covered", "Not covered"), ("unrecognized", "Not recognised")):
            items = detail.get(key) or []
            if items:
                listed = "".join(f"<li>{_h(i)}</li>" for i in items)
                out.append(f"<div><b>{title} ({len(items)})</b><ul>{listed}</ul></div>")
        return "".join(out)

    def _rules(self, s: Summary, add: Any) -> None:
        kb = self.kb
        title = "Rules" if self.all_rules else "Rules that apply or may apply"
        add(
            f"<h2>{title}</h2>\n<table><tr><th>rule</th><th>statement</th>"
            "<th>caveats, and the source's words behind each</th><th>applied</th>"
            "<th>undetermined</th></tr>\n"
        )
        for index, rule in enumerate(kb.rules):
            if not (self.all_rules or s.rules[rule.id] or s.undetermined[rule.id]):
                continue
            caveats = "".join(
                f'<div class="support"><code>{_h(c.code)}</code> “{_h(c.support)}”</div>'
                for c in kb.caveat_notes[index]
            )
            add(
                f"<tr><td><code>{_h(rule.id)}</code></td><td>{_h(rule.statement)}</td>"
                f"<td>{caveats}</td>"
                f'<td class="n">{s.rules[rule.id]:,}</td>'
                f'<td class="n">{s.undetermined[rule.id]:,}</td></tr>\n'
            )
        add("</table>\n<h2>Statements by category</h2>\n")
        add("<table><tr><th>category</th><th>statements</th></tr>\n")
        for category, n in s.categories.most_common():
            add(f'<tr><td>{_h(_category_label(kb, category))}</td><td class="n">{n:,}</td></tr>\n')
        add(
            "</table>\n<h2>Caveats</h2>\n<table><tr><th>caveat</th><th>meaning</th><th>times</th>"
            "</tr>\n"
        )
        for code, n in s.caveats.most_common():
            meaning = kb.caveats[code].meaning if code in kb.caveats else ""
            add(
                f"<tr><td><code>{_h(code)}</code></td><td>{_h(meaning)}</td>"
                f'<td class="n">{n:,}</td></tr>\n'
            )
        add("</table>\n")
