"""The source text in the pack book: paragraph by paragraph as written, each claim sentence
highlighted and linked to the rules that encode it, each sentence left out shown with its reason,
the words each rule quotes underlined and the words behind each caveat marked.

Sentences are the source's own (engine.evidence.Source: numbered as `caveat rules coverage` and
`caveat rules new --sentence` number them); which rules encode a sentence and why one is left out
come from `coverage`. Offsets are in the source's whitespace-normalised text, where quotes are
found."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from ..evidence import Sentence, Source, normalise_space
from ..knowledge_base import KnowledgeBase
from ..rules import Rule
from .coverage import SentenceCoverage


@dataclass(frozen=True)
class Span:
    """Words of a source a rule points at: its quote, or a caveat's support."""

    start: int
    end: int
    kind: str  # "quote" or "support"
    rule: str
    code: str = ""  # the caveat's code, for a support


def sentence_anchor(source_id: str, number: int) -> str:
    return f"s-{source_id}-{number}"


def quote_span(source: Source, quote: str) -> tuple[int, int] | None:
    start = source.find(quote)
    return (start, start + len(normalise_space(quote))) if start >= 0 else None


def support_span(source: Source, quote: str, support: str) -> tuple[int, int] | None:
    """Where a caveat's words are: inside the rule's quote when they are a span of it, else
    their own place in the source."""
    words = normalise_space(support)
    around = quote_span(source, quote)
    if around is not None:
        at = source.text.find(words, around[0], around[1])
        if at >= 0:
            return at, at + len(words)
    at = source.find(words)
    return (at, at + len(words)) if at >= 0 else None


def spans_of(source: Source, rules: Sequence[Rule]) -> list[Span]:
    """Every quote and caveat support of the rules (retired ones left out) in this source."""
    spans = []
    for rule in rules:
        if rule.status == "retired" or rule.evidence.source != source.id:
            continue
        found = quote_span(source, rule.evidence.quote)
        if found is not None:
            spans.append(Span(*found, "quote", rule.id))
        for caveat in rule.caveats:
            where = support_span(source, rule.evidence.quote, caveat.support)
            if where is not None:
                spans.append(Span(*where, "support", rule.id, caveat.code))
    return spans


def lines_of(source: Source) -> list[list[Sentence] | None]:
    """The source's lines as written, each as its sentences; None for a blank line (between
    paragraphs). A line's normalised text is its sentences joined by single spaces, as
    Source splits it."""
    out: list[list[Sentence] | None] = []
    sentences = source.sentences
    i = 0
    for raw in source.raw_text.splitlines():
        length = len(normalise_space(raw))
        if not length:
            out.append(None)
            continue
        line: list[Sentence] = []
        taken = 0
        while taken < length and i < len(sentences):
            line.append(sentences[i])
            taken += len(sentences[i].text) + 1
            i += 1
        out.append(line)
    return out


def _segments(sentence: Sentence, spans: Sequence[Span]) -> list[tuple[int, int, list[Span]]]:
    """The sentence cut where a span starts or ends, each piece with the spans over it."""
    inside = [s for s in spans if s.start < sentence.end and s.end > sentence.start]
    cuts = {sentence.start, sentence.end}
    for s in inside:
        cuts.update(c for c in (s.start, s.end) if sentence.start < c < sentence.end)
    edges = sorted(cuts)
    return [
        (a, b, [s for s in inside if s.start <= a and s.end >= b])
        for a, b in itertools.pairwise(edges)
    ]


def _piece(text: str, over: list[Span], numbers: dict[str, str], kb: KnowledgeBase) -> str:
    quotes = sorted({numbers.get(s.rule, s.rule) for s in over if s.kind == "quote"})
    supports = [s for s in over if s.kind == "support"]
    body = escape(text)
    if not quotes and not supports:
        return body
    classes, attrs, tips = [], [], []
    if quotes:
        classes.append("quote")
        tips.append("quoted by " + ", ".join(quotes))
        rules = " ".join(sorted({s.rule for s in over if s.kind == "quote"}))
        attrs.append(f'data-quote="{escape(rules)}"')
    if supports:
        classes.append("support")
        keys = " ".join(f"{s.rule}/{s.code}" for s in supports)
        attrs.append(f'data-support="{escape(keys)}"')
        tips.append(
            "caveat words: "
            + ", ".join(
                f"{kb.caveats[s.code].label if s.code in kb.caveats else s.code} "
                f"({numbers.get(s.rule, s.rule)})"
                for s in supports
            )
        )
    tag = "mark" if supports else "span"
    return (
        f'<{tag} class="{" ".join(classes)}" {" ".join(attrs)} title="{escape("; ".join(tips))}">'
        f"{body}</{tag}>"
    )


def _ending(
    at: int, over: list[Span], numbers: dict[str, str], kb: KnowledgeBase, piece: str
) -> str:
    """A piece that ends a caveat's support, followed by the caveat's name and its rule's number
    in small letters: seen and printed, not only in a tooltip. (Drawn by the stylesheet from an
    attribute, so that the source's words stay as they are in the page's text.)"""
    ended = [s for s in over if s.kind == "support" and s.end == at]
    if not ended:
        return piece
    said = ", ".join(
        f"{kb.caveats[s.code].label if s.code in kb.caveats else s.code} "
        f"{numbers.get(s.rule, s.rule)}"
        for s in ended
    )
    return f'<span class="cavend" data-caveat="{escape(said)}">{piece}</span>'


def _sentence_html(
    kb: KnowledgeBase,
    source: Source,
    sentence: Sentence,
    row: SentenceCoverage | None,
    spans: Sequence[Span],
    numbers: dict[str, str],
) -> str:
    text = "".join(
        _ending(b, over, numbers, kb, _piece(source.text[a:b], over, numbers, kb))
        for a, b, over in _segments(sentence, spans)
    )
    anchor = escape(sentence_anchor(source.id, sentence.number))
    number = f'<span class="sn" title="sentence {sentence.number}">{sentence.number}</span>'
    if row is not None and row.rules:
        refs = []
        for rid in row.rules:
            rule = kb.rule(rid)
            draft = " draft" if rule.status == "draft" else ""
            refs.append(
                f'<a class="ref{draft}" href="#rule-{escape(rid)}" '
                f'title="{escape(numbers.get(rid, rid) + ": " + rule.statement)}">'
                f"{escape(numbers.get(rid, rid))}</a>"
            )
        return (
            f'<span class="s claim" id="{anchor}" data-rules="{escape(" ".join(row.rules))}">'
            f'{number}{text}<span class="refs">{"".join(refs)}</span></span>'
        )
    if row is not None and row.left_out:
        return (
            f'<span class="s left-out" id="{anchor}">{number}{text}'
            f'<span class="why"><b>Left out:</b> {escape(row.left_out)}</span></span>'
        )
    return (
        f'<span class="s unencoded" id="{anchor}">{number}{text}'
        '<span class="why"><b>Not encoded</b>, and no reason recorded.</span></span>'
    )


def source_html(
    kb: KnowledgeBase, source: Source, rows: Sequence[SentenceCoverage], numbers: dict[str, str]
) -> str:
    """The source's text as paragraphs of marked sentences."""
    by_number = {r.number: r for r in rows if r.source == source.id}
    spans = spans_of(source, kb.rules)
    paragraphs: list[list[str]] = [[]]
    for line in lines_of(source):
        if line is None:
            if paragraphs[-1]:
                paragraphs.append([])
            continue
        paragraphs[-1].append(
            " ".join(
                _sentence_html(kb, source, s, by_number.get(s.number), spans, numbers) for s in line
            )
        )
    return "\n".join(f'<p class="para">{"<br>".join(lines)}</p>' for lines in paragraphs if lines)


def quote_html(kb: KnowledgeBase, rule: Rule) -> str:
    """A rule's quote with the words behind its caveats marked (those inside the quote)."""
    source = kb.sources.get(rule.evidence.source)
    where = quote_span(source, rule.evidence.quote) if source is not None else None
    if source is None or where is None:
        return escape(normalise_space(rule.evidence.quote))
    spans = []
    for caveat in rule.caveats:
        found = support_span(source, rule.evidence.quote, caveat.support)
        if found is not None and where[0] <= found[0] and found[1] <= where[1]:
            spans.append(Span(*found, "support", rule.id, caveat.code))
    out = []
    for a, b, over in _segments(Sentence(0, "", *where), spans):
        text = escape(source.text[a:b])
        if over:
            labels = ", ".join(kb.caveats[s.code].label for s in over if s.code in kb.caveats)
            text = (
                f'<mark class="support" title="{escape("caveat words: " + labels)}">{text}</mark>'
            )
        out.append(text)
    return "".join(out)


def rule_sentences(kb: KnowledgeBase, rule: Rule) -> list[tuple[str, int]]:
    """(source id, sentence number) of the sentences a rule's quote spans."""
    source = kb.sources.get(rule.evidence.source)
    if source is None:
        return []
    return [(source.id, s.number) for s in source.sentences_of(rule.evidence.quote)]
