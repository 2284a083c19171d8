"""`caveat rules new`: a rule file and two cases started from a sentence of the source, every part
that needs an author's judgement left as a TODO that `caveat rules check` reports."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..evidence import BASES, normalise_space
from ..knowledge_base import KnowledgeBase
from ..vocabulary import Vocabulary, normalise_text


@dataclass
class Scaffold:
    rule_file: Path
    case_file: Path
    sentence: int
    concepts: list[str]
    already: list[str]  # rules that already quote this sentence


def concepts_in(text: str, vocab: Vocabulary) -> list[str]:
    """Concepts whose label or a synonym occurs in a text, longest names first."""
    norm = f" {normalise_text(text)} "
    found: dict[str, None] = {}
    for name, cid in sorted(vocab.all_names().items(), key=lambda kv: -len(kv[0])):
        if len(name) > 2 and re.search(rf"(?<![a-z0-9]){re.escape(name)}(?![a-z0-9])", norm):
            found.setdefault(cid, None)
    return list(found)


def _slug(text: str, limit: int = 6) -> str:
    stop = {
        "the",
        "a",
        "an",
        "of",
        "in",
        "to",
        "and",
        "is",
        "as",
        "for",
        "it",
        "has",
        "been",
        "be",
        "with",
        "can",
        "by",
        "this",
        "that",
        "also",
        "its",
        "using",
    }
    words = [w for w in re.findall(r"[a-z0-9]+", text.casefold()) if w not in stop]
    return "-".join(words[:limit]) or "new-rule"


def scaffold(
    kb: KnowledgeBase,
    *,
    quote: str | None = None,
    sentence: int | None = None,
    rule_id: str | None = None,
    source_id: str | None = None,
    cases_dir: Path,
) -> Scaffold:
    """Write a rule file and two cases for a source sentence. Raises ValueError with the reason."""
    source = kb.sources[source_id] if source_id else next(iter(kb.sources.values()))
    if sentence is not None:
        if not 1 <= sentence <= len(source.sentences):
            raise ValueError(f"{source.id} has sentences 1 to {len(source.sentences)}")
        found = source.sentences[sentence - 1]
        quote = found.text
    else:
        assert quote is not None
        hits = source.sentences_of(quote)
        if not hits:
            near = source.nearest_sentence(quote)
            hint = f"; nearest is sentence {near.number}: {near.text!r}" if near else ""
            raise ValueError(f"the quote is not in {source.id}{hint}")
        found = hits[0]
        quote = normalise_space(quote)
    already = [r.id for r in kb.rules if found in source.sentences_of(r.evidence.quote)]
    rule_id = rule_id or _slug(quote)
    if rule_id in kb.rule_index:
        raise ValueError(f"rule {rule_id} exists already; choose another --id")
    concepts = [c for c in concepts_in(quote, kb.vocabulary) if c != kb.manifest.subject]
    rules_dir = kb.root / kb.manifest.rules
    rule_file = rules_dir / f"{rule_id}.yaml"
    case_file = cases_dir / f"{rule_id}.yaml"
    for path in (rule_file, case_file):
        if path.exists():
            raise ValueError(f"{path} exists already")
    suggestion = ", ".join(concepts) or "none found; see concepts.yaml"
    categories = ", ".join(kb.categories)
    rule_file.write_text(
        f"# Scaffolded by `caveat rules new` from {source.id} sentence {found.number}.\n"
        f"# Concepts found in the sentence: {suggestion}.\n"
        "# Replace every TODO; `caveat rules check` fails until none is left.\n"
        "rules:\n"
        f"  - id: {rule_id}\n"
        "    status: draft  # evaluated only with --include-draft; `active` once reviewed\n"
        f'    category: "TODO: one of {categories}"\n'
        '    statement: "TODO: what the sentence claims, in your own words"\n'
        f'    when: "TODO: the condition (concepts in the sentence: {suggestion})"\n'
        "    caveats: []  # each {code: ..., support: <the source's words behind it>}\n"
        "    evidence:\n"
        f"      source: {source.id}\n"
        f"      quote: {_yaml_str(quote)}\n"
        f"      basis: stated  # or {', '.join(b for b in BASES if b != 'stated')}, where the "
        "source names that evidence\n",
        encoding="utf-8",
    )
    first = kb.vocabulary.label(concepts[0]) if concepts else "TODO: a condition"
    case_file.write_text(
        f"# Cases for rule {rule_id}: one where it applies, one near miss where it must not.\n"
        f"- id: {rule_id}-applies\n"
        f'  description: "TODO: a scenario the rule is about"\n'
        f"  conditions: [{_yaml_str(first)}]\n"
        "  expect:\n"
        f"    applies: [{rule_id}]\n"
        "\n"
        f"- id: {rule_id}-near-miss\n"
        f'  description: "TODO: the closest scenario where the rule must not apply"\n'
        f"  conditions: [{_yaml_str(first)}]\n"
        "  expect:\n"
        f"    not_applies: [{rule_id}]\n",
        encoding="utf-8",
    )
    return Scaffold(rule_file, case_file, found.number, concepts, already)


def _yaml_str(text: str) -> str:
    """A YAML double-quoted string holding exactly `text` (newlines and tabs kept)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n").replace("\t", "\\t") + '"'
