"""The pack book's stylesheet: inline, no web fonts, no images, nothing fetched; a print
stylesheet so that the book can be read and signed on paper (no sticky bar, cards kept whole,
highlights printed, links as their text)."""

CSS = """
:root {
  --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa; --accent: #0b5cad;
  --claim: #e3eefb; --support: #ffe08a; --support-edge: #c99400; --left: #6e7781;
  --good: #116329; --good-bg: #dafbe1; --bad: #a40e26; --bad-bg: #ffebe9;
  --warn: #7d4e00; --warn-bg: #fff4c5;
}
* { box-sizing: border-box; }
html { font-size: 16px; }
body {
  margin: 0; color: var(--ink); background: #fbfbfc; line-height: 1.55;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
    "Noto Sans", "Liberation Sans", sans-serif;
}
[id] { scroll-margin-top: 4rem; }
.bar {
  position: sticky; top: 0; z-index: 10; background: #ffffffee;
  border-bottom: 1px solid var(--line); backdrop-filter: blur(4px);
}
.bar .inner {
  max-width: 64rem; margin: 0 auto; padding: .5rem 1.5rem; display: flex; gap: 1.25rem;
  align-items: baseline; flex-wrap: wrap;
}
.bar .name { font-weight: 700; }
.bar .name small { font-weight: 400; color: var(--muted); margin-left: .4rem; }
.bar nav { display: flex; gap: 1rem; flex-wrap: wrap; font-size: .92rem; }
.bar nav a { color: var(--accent); text-decoration: none; }
.bar nav a:hover { text-decoration: underline; }
main { max-width: 64rem; margin: 0 auto; padding: 1rem 1.5rem 4rem; }
h1 { font-size: 2.1rem; line-height: 1.2; margin: 1.2rem 0 .25rem; }
h2 {
  font-size: 1.55rem; margin: 2.8rem 0 .8rem; padding-bottom: .3rem;
  border-bottom: 2px solid var(--ink);
}
h2 .part { color: var(--muted); font-weight: 400; margin-right: .4rem; }
h3 { font-size: 1.2rem; margin: 2rem 0 .6rem; }
h4 { font-size: 1.05rem; margin: 0; }
a { color: var(--accent); }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "Liberation Mono", monospace;
  font-size: .88em; background: var(--soft); padding: 0 .25em; border-radius: 4px; }
.subtitle { color: var(--muted); font-size: 1.05rem; margin: 0 0 1rem; }
.lead { color: var(--muted); margin: .2rem 0 .8rem; }
.small { font-size: .85rem; color: var(--muted); }
.url {
  font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .85em; word-break: break-all;
}
.disclaimer {
  border: 1px solid var(--support-edge); background: #fff9e6; border-radius: 8px;
  padding: .7rem 1rem; margin: 1rem 0;
}
.disclaimer strong { display: block; }
dl.facts, .card dl, .concept dl {
  display: grid; grid-template-columns: 11rem 1fr; gap: .35rem 1.2rem; margin: .6rem 0;
}
dl.facts dt, .card dt, .concept dt { font-weight: 600; color: var(--muted); font-size: .92rem; }
dl.facts dd, .card dd, .concept dd { margin: 0; }
.facts ul, .card dd ul { margin: .2rem 0; padding-left: 1.2rem; }
.badge {
  display: inline-block; font-size: .72rem; font-weight: 700; letter-spacing: .04em;
  text-transform: uppercase; padding: .05rem .5rem; border-radius: 999px; vertical-align: .1em;
  background: var(--soft); color: var(--muted); border: 1px solid var(--line);
}
.badge.good, .badge.pass, .badge.active { background: var(--good-bg); color: var(--good);
  border-color: #aceebb; }
.badge.bad, .badge.fail, .badge.error { background: var(--bad-bg); color: var(--bad);
  border-color: #ffcecb; }
.badge.warn, .badge.draft { background: var(--warn-bg); color: var(--warn); border-color: #f0d46a; }
.bad-text { color: var(--bad); font-weight: 600; }
.contents { margin: 1.2rem 0; }
.contents h3 { margin: 0 0 .3rem; }
.toc { list-style: none; padding: 0; margin: 0; }
.toc li { margin: .25rem 0; padding-left: 4.2rem; text-indent: -4.2rem; }
.toc .part { display: inline-block; width: 4rem; text-indent: 0; color: var(--muted); }
table { border-collapse: collapse; width: 100%; margin: .4rem 0 1rem; font-size: .92rem; }
th, td {
  text-align: left; vertical-align: top; padding: .35rem .55rem;
  border-bottom: 1px solid var(--line);
}
thead th { background: var(--soft); font-size: .82rem; color: var(--muted); font-weight: 600; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.changelog li { margin: .15rem 0; }
.caveat-table td:first-child { width: 14rem; }
.caveat-table td:last-child { width: 13rem; }
.release { margin: .8rem 0; }
.release h4 { display: flex; gap: .6rem; align-items: baseline; flex-wrap: wrap; }

/* the source text */
.legend {
  display: grid; grid-template-columns: auto 1fr; gap: .4rem 1rem; align-items: baseline;
  border: 1px solid var(--line); background: #fff; border-radius: 8px; padding: .8rem 1rem;
  margin: .8rem 0 1.2rem; font-size: .92rem;
}
.legend .sample {
  font-family: Georgia, "Times New Roman", "Liberation Serif", serif; font-size: 1rem;
  white-space: nowrap;
}
.source-text {
  font-family: Georgia, "Times New Roman", "Liberation Serif", serif; font-size: 1.1rem;
  line-height: 2; background: #fff; border: 1px solid var(--line); border-radius: 8px;
  padding: 1rem 1.6rem;
}
.para { margin: 0 0 1.1rem; }
.s {
  border-radius: 3px; padding: .1em 0; -webkit-box-decoration-break: clone;
  box-decoration-break: clone;
}
.s.claim { background: var(--claim); }
.s.left-out { color: var(--left); font-style: italic; }
.s.unencoded { outline: 2px dashed var(--bad); }
.s:target { background: #cfe1f8; outline: 2px solid var(--accent); }
.sn {
  font: 600 .66rem/1 system-ui, sans-serif; color: #8c959f; vertical-align: .55em;
  margin: 0 .2em 0 .1em; font-style: normal;
}
.quote {
  text-decoration: underline; text-decoration-color: #4f86c6; text-decoration-thickness: 1.5px;
  text-underline-offset: .24em;
}
mark.support { background: var(--support); color: inherit; border-radius: 2px; }
.cavend::after { content: attr(data-caveat); font: 600 0.68em/1 system-ui, sans-serif;
  color: #7a4a00; margin: 0 0.25em; letter-spacing: 0.02em; white-space: nowrap; }
.why {
  display: block; font: .86rem/1.45 system-ui, sans-serif; font-style: normal; color: #3d444d;
  background: var(--soft); border-left: 3px solid #8c959f; padding: .3rem .6rem;
  margin: .15rem 0 .5rem;
}
.s.unencoded .why { border-left-color: var(--bad); }
.refs { white-space: nowrap; }
a.ref {
  display: inline-block; font: 700 .7rem/1.5 system-ui, sans-serif; font-style: normal;
  color: #fff; background: var(--accent); border-radius: 999px; padding: 0 .45rem;
  margin-left: .25rem; text-decoration: none; vertical-align: .15em;
}
a.ref:hover, a.ref:focus { background: #083f77; }
a.ref.draft { background: #fff; color: var(--warn); border: 1px dashed var(--warn); }
.source-meta { margin: 1.5rem 0 .5rem; }

/* rule cards */
.card {
  background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 1rem 1.3rem;
  margin: 1rem 0; box-shadow: 0 1px 2px #0000000a;
}
.card:target { outline: 3px solid #0b5cad88; outline-offset: 2px; }
.card header { display: flex; gap: .8rem; align-items: flex-start; }
.card .num {
  flex: none; background: var(--accent); color: #fff; font-weight: 700; border-radius: 6px;
  padding: .05rem .5rem; font-size: .95rem; margin-top: .1rem;
}
.card h4 { font-size: 1.1rem; line-height: 1.4; }
.card .meta { margin: .3rem 0 .2rem; font-size: .88rem; color: var(--muted); }
.card blockquote {
  margin: .2rem 0; padding: .3rem .8rem; border-left: 3px solid var(--accent);
  font-family: Georgia, "Times New Roman", "Liberation Serif", serif; background: var(--soft);
}
.card .caveats { list-style: none; padding: 0; margin: 0; }
.card .caveats li { margin: 0 0 .45rem; }
.card .caveats q { quotes: "\\201C" "\\201D"; background: var(--support); border-radius: 2px; }
.card .cond { margin: .2rem 0; }
.card table { font-size: .86rem; margin: .3rem 0 .6rem; }
.card td .small { display: block; }
.card .back { margin: .4rem 0 0; font-size: .85rem; }
.card.retired { opacity: .75; }
.card-cases h5 {
  font-size: .92rem; color: var(--muted); margin: .8rem 0 .2rem; padding-top: .5rem;
  border-top: 1px solid var(--line);
}
.group-title { font-size: .82rem; font-weight: 700; color: var(--muted); text-transform: uppercase;
  letter-spacing: .04em; margin: .5rem 0 .1rem; }
.group-title .count { text-transform: none; font-weight: 400; letter-spacing: 0; }
.cases th { white-space: nowrap; }
.cases td:first-child { width: 4.5rem; }
.cases td:nth-child(2) { width: 44%; }
.more { font-size: .84rem; color: var(--muted); margin: -.2rem 0 .6rem; line-height: 1.9; }
.case-chip {
  display: inline-block; white-space: nowrap; border: 1px solid var(--line); border-radius: 999px;
  padding: 0 .5rem; line-height: 1.5; margin: 0 .1rem; color: var(--ink); background: #fff;
}
.case-chip.pass { border-color: #aceebb; background: #f1fdf4; }
.case-chip.fail, .case-chip.error { border-color: #ffcecb; background: var(--bad-bg); }

/* the vocabulary */
.tree { margin: .6rem 0 1rem; }
.tree h4 { margin-bottom: .3rem; }
.tree ul { padding-left: 1.1rem; margin: .1rem 0; }
.tree > ul { padding-left: 0; list-style: none; columns: 3; column-gap: 2rem; }
.tree > ul > li { break-inside: avoid; margin-bottom: .5rem; }
.tree li { margin: .1rem 0; }
.tree a { text-decoration: none; }
.tree a:hover { text-decoration: underline; }
.tree > ul > li > a { font-weight: 600; }
.concept {
  background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: .7rem 1rem;
  margin: .7rem 0;
}
.concept:target { outline: 3px solid #0b5cad88; }
.concept dl { grid-template-columns: 8rem 1fr; font-size: .93rem; }
.codes { font-size: .86rem; }
ul.listed {
  columns: 2; column-gap: 2rem; font-size: .82rem; padding-left: 1.1rem; margin: .2rem 0;
}
ul.listed li { break-inside: avoid; }

/* sign-off */
.sign { width: 100%; margin-top: 1rem; }
.sign td { height: 3.2rem; border-bottom: 1px solid var(--ink); vertical-align: bottom; }
.sign th { width: 14rem; border-bottom: none; vertical-align: bottom; padding-bottom: .4rem; }

@page { size: A4; margin: 16mm 14mm 18mm; }
@media print {
  html { font-size: 10pt; }
  body { background: #fff; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  .bar, .screen-only { display: none; position: static; }
  main { max-width: none; padding: 0; }
  .part { break-before: page; }
  h2, h3, h4, .group-title { break-after: avoid; }
  .card, .concept, .release, .legend, .sign, .tree > ul > li, tr, blockquote {
    break-inside: avoid;
  }
  .card, .concept { box-shadow: none; }
  .card:target, .concept:target, .s:target { outline: none; }
  a { color: inherit; text-decoration: none; }
  a.ref { color: #fff; }
  .source-text { border: none; padding: 0; }
}
"""
