"""The vocabulary in the pack book: the is_a hierarchy at a glance, then each concept with its
label, synonyms, parents and children, its codes with their descriptions (ICD-10-CM's own, from
engine.terminology; the pack's note and provenance for the systems that cannot be checked
offline; the displays of the pack's code lists), and the rules that test it."""

from __future__ import annotations

from html import escape

from .. import terminology
from ..conditions import concepts_mentioned
from ..knowledge_base import KnowledgeBase
from ..vocabulary import Concept


def _link(kb: KnowledgeBase, cid: str) -> str:
    if cid not in kb.vocabulary:
        return f"<code>{escape(cid)}</code> (not a concept of the pack)"
    return f'<a href="#concept-{escape(cid)}">{escape(kb.vocabulary.label(cid))}</a>'


def children_of(kb: KnowledgeBase) -> dict[str, list[str]]:
    """Each concept's direct children (the concepts whose is_a names it), in pack order."""
    out: dict[str, list[str]] = {cid: [] for cid in kb.vocabulary.concepts}
    for concept in kb.vocabulary.concepts.values():
        for parent in concept.is_a:
            if parent in out and concept.id not in out[parent]:
                out[parent].append(concept.id)
    return out


def _tree(kb: KnowledgeBase, cid: str, kids: dict[str, list[str]], path: tuple[str, ...]) -> str:
    below = [k for k in kids.get(cid, []) if k not in path]  # (a cycle is shown once)
    inner = "".join(_tree(kb, k, kids, (*path, k)) for k in below)
    return f"<li>{_link(kb, cid)}{f'<ul>{inner}</ul>' if inner else ''}</li>"


def hierarchy_html(kb: KnowledgeBase) -> str:
    """The is_a hierarchy as nested lists, one per kind, from the concepts with no parent."""
    kids = children_of(kb)
    out = []
    for kind, title in (("condition", "Conditions"), ("drug", "Drugs")):
        roots = [
            c.id
            for c in kb.vocabulary.concepts.values()
            if c.kind == kind and not any(p in kb.vocabulary for p in c.is_a)
        ]
        items = "".join(_tree(kb, r, kids, (r,)) for r in roots)
        out.append(f'<div class="tree {kind}"><h4>{title}</h4><ul>{items}</ul></div>')
    return "".join(out)


def _codes_html(concept: Concept) -> str:
    if not concept.codes:
        return ""
    rows = []
    for code in concept.codes:
        if code.system == "ICD-10-CM":
            official = terminology.icd_description(code.code)
            described = escape(official) if official else "<em>not an ICD-10-CM code</em>"
            if code.note and official and code.note.strip() != official.strip():
                described += f'<div class="small">the pack’s note: {escape(code.note)}</div>'
            checked = "checked against ICD-10-CM (offline)"
        else:
            described = escape(code.note) if code.note else "<em>no description recorded</em>"
            checked = (
                "verified against the code system"
                if code.verified
                else "not verified (cannot be checked offline)"
            )
            if code.source:
                found = (
                    code.source if code.source.startswith("found") else f"found in {code.source}"
                )
                checked += f"; {escape(found)}"
        rows.append(
            f"<tr><td>{escape(code.system)}</td><td><code>{escape(code.code)}</code></td>"
            f"<td>{described}</td><td class='small'>{checked}</td></tr>"
        )
    return (
        '<table class="codes"><thead><tr><th>system</th><th>code</th><th>description</th>'
        f"<th>binding</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _listed_html(kb: KnowledgeBase, cid: str) -> str:
    out = []
    for listing in kb.contents.code_lists:
        entries = [e for e in listing.codes if e.concept == cid]
        if not entries:
            continue
        items = "".join(
            f"<li><code>{escape(e.code)}</code> {escape(e.display)}"
            f"{f' <em>({escape(e.note)})</em>' if e.note else ''}</li>"
            for e in entries
        )
        out.append(
            f'<p class="small">{len(entries)} {escape(listing.system)} code'
            f"{'s' if len(entries) != 1 else ''} from the code list "
            f'“{escape(listing.title)}” (<a href="#codelist-{escape(listing.id)}">'
            f'source</a>), with their displays:</p><ul class="listed">{items}</ul>'
        )
    return "".join(out)


def concept_html(kb: KnowledgeBase, concept: Concept, kids: list[str], used_by: str) -> str:
    facts = [("id", f"<code>{escape(concept.id)}</code> ({escape(concept.kind)})")]
    if concept.synonyms:
        facts.append(("also called", escape("; ".join(concept.synonyms))))
    facts.append(
        (
            "is a kind of",
            ", ".join(_link(kb, p) for p in concept.is_a) or "nothing broader in the pack",
        )
    )
    facts.append(("kinds of it", ", ".join(_link(kb, k) for k in kids) or "none in the pack"))
    if concept.qualifier:
        facts.append(("qualifier", f"codes whose description says “{escape(concept.qualifier)}”"))
    facts.append(("tested by", used_by or "no rule tests it directly"))
    if concept.note:
        facts.append(("note", escape(concept.note)))
    rows = "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in facts)
    return (
        f'<article class="concept" id="concept-{escape(concept.id)}">'
        f"<h4>{escape(concept.label)}</h4><dl>{rows}</dl>"
        f"{_codes_html(concept)}{_listed_html(kb, concept.id)}</article>"
    )


def vocabulary_html(kb: KnowledgeBase, numbers: dict[str, str]) -> str:
    kids = children_of(kb)
    users: dict[str, list[str]] = {}
    for rule in kb.rules:
        for cid in concepts_mentioned(rule.when):
            users.setdefault(cid, []).append(rule.id)
    parts = [
        "<h3>The hierarchy</h3>",
        '<p class="lead">A concept stands for every concept below it: a rule about seizures '
        "applies to a patient with absence seizures.</p>",
        hierarchy_html(kb),
    ]
    for kind, title in (("condition", "Conditions"), ("drug", "Drugs")):
        parts.append(f'<h3 id="vocabulary-{kind}">{title}</h3>')
        for concept in kb.vocabulary.concepts.values():
            if concept.kind != kind:
                continue
            used_by = ", ".join(
                f'<a class="ref" href="#rule-{escape(r)}">{escape(numbers.get(r, r))}</a>'
                for r in users.get(concept.id, [])
            )
            parts.append(concept_html(kb, concept, kids[concept.id], used_by))
    if kb.contents.ambiguous:
        rows = "".join(
            f"<tr><td>{escape(a.name)}</td>"
            f"<td>{', '.join(_link(kb, c) for c in a.concepts)}</td>"
            f"<td>{escape(a.reason)}</td></tr>"
            for a in kb.contents.ambiguous
        )
        parts.append(
            '<h3 id="vocabulary-ambiguous">Names too ambiguous to recognise</h3>'
            '<p class="lead">A scenario that uses one of these names is told the concepts it '
            "could mean, and nothing is read from it.</p>"
            '<table class="plain"><thead><tr><th>name</th><th>could mean</th><th>why</th></tr>'
            f"</thead><tbody>{rows}</tbody></table>"
        )
    for listing in kb.contents.code_lists:
        src = listing.source
        facts = [("codes", f"{len(listing.codes)} {escape(listing.system)} codes")]
        if src is not None:
            facts.append(("published as", f"“{escape(src.title)}”"))
            facts += [
                (k, escape(v)) for k, v in (("by", src.publisher), ("version", src.version)) if v
            ]
            if src.date:
                facts.append(("dated", str(src.date)))
            if src.url:
                facts.append(("canonical URL", f"<span class='url'>{escape(src.url)}</span>"))
            if src.retrieved_from:
                facts.append(
                    ("read from", f"<span class='url'>{escape(src.retrieved_from)}</span>")
                )
            if src.licence:
                facts.append(("licence", escape(src.licence)))
        else:
            facts.append(("source", "<span class='bad-text'>not recorded</span>"))
        rows = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
        parts.append(
            f'<h3 id="codelist-{escape(listing.id)}">Code list: {escape(listing.title)}</h3>'
            f'<dl class="facts">{rows}</dl>'
        )
    return "\n".join(parts)
