"""`caveat rules new`: a rule file and two cases started from a sentence of the source, every part
that needs an author's judgement left as a TODO that `caveat rules check` reports."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..evidence import BASES, normalise_space
from ..knowledge_base import KnowledgeBase
from ..rules import RULE_ID_MAX, rule_id_problem
from ..suggestions import did_you_mean
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
    slug = ""
    for word in words[:limit]:
        longer = f"{slug}-{word}" if slug else word[:RULE_ID_MAX]
        if len(longer) > RULE_ID_MAX:
            break
        slug = longer
    return slug or "new-rule"  # a valid rule id: words of [a-z0-9] joined by single hyphens


def scaffold(
    kb: KnowledgeBase,
    *,
    quote: str | None = None,
    sentence: int | None = None,
    rule_id: str | None = None,
    source_id: str | None = None,
    cases_dir: Path,
) -> Scaffold:
    """Write a rule file and two cases for a source sentence. Raises ValueError with the reason;
    nothing is written unless both files can be, each a new file inside the pack's rules directory
    or the case directory."""
    if rule_id is not None and (problem := rule_id_problem(rule_id)):
        raise ValueError(f"--id {problem}")
    if source_id is not None and source_id not in kb.sources:
        raise ValueError(
            f"no source {source_id!r} in the pack{did_you_mean(source_id, kb.sources)}; "
            f"its sources: {', '.join(kb.sources)}"
        )
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
    if problem := rule_id_problem(rule_id):  # never, for a slug; but nothing unchecked is written
        raise ValueError(problem)
    if rule_id in kb.rule_index:
        raise ValueError(f"rule {rule_id} exists already; choose another --id")
    concepts = [c for c in concepts_in(quote, kb.vocabulary) if c != kb.manifest.subject]
    rules_dir = kb.root / kb.manifest.rules
    rule_file, case_file = _targets(rules_dir, Path(cases_dir), f"{rule_id}.yaml")
    suggestion = ", ".join(concepts) or "none found; see concepts.yaml"
    categories = ", ".join(kb.categories)
    rule_text = (
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
        f"      quote: {yaml_scalar(quote)}\n"
        f"      basis: stated  # or {', '.join(b for b in BASES if b != 'stated')}, where the "
        "source names that evidence\n"
    )
    first = kb.vocabulary.label(concepts[0]) if concepts else "TODO: a condition"
    case_text = (
        f"# Cases for rule {rule_id}: one where it applies, one near miss where it must not.\n"
        f"- id: {rule_id}-applies\n"
        f'  description: "TODO: a scenario the rule is about"\n'
        f"  conditions: [{yaml_scalar(first)}]\n"
        "  expect:\n"
        f"    applies: [{rule_id}]\n"
        "\n"
        f"- id: {rule_id}-near-miss\n"
        f'  description: "TODO: the closest scenario where the rule must not apply"\n'
        f"  conditions: [{yaml_scalar(first)}]\n"
        "  expect:\n"
        f"    not_applies: [{rule_id}]\n"
    )
    _create(rule_file, rule_text)
    try:
        _create(case_file, case_text)
    except BaseException:
        rule_file.unlink(missing_ok=True)
        raise
    return Scaffold(rule_file, case_file, found.number, concepts, already)


def _targets(rules_dir: Path, cases_dir: Path, name: str) -> tuple[Path, Path]:
    """The rule file and the case file to create, each checked to be a new file directly inside
    its directory (symbolic links resolved), and the two never the same file."""
    rules_real, cases_real = rules_dir.resolve(), cases_dir.resolve()
    if cases_real == rules_real or cases_real.is_relative_to(rules_real):
        raise ValueError(
            f"the case directory {cases_dir} is inside the pack's rules directory {rules_dir}, "
            "where every *.yaml is read as a rule file: give --cases another directory"
        )
    out = []
    for directory, real in ((rules_dir, rules_real), (cases_dir, cases_real)):
        path = directory / name
        if path.is_symlink() or path.exists():
            raise ValueError(f"{path} exists already; choose another --id")
        if path.resolve().parent != real:
            raise ValueError(f"{path} would be written outside {directory}; refused")
        out.append(path)
    return out[0], out[1]


def _create(path: Path, text: str) -> None:
    """Write a new file; never replace one, nor follow a symbolic link planted in its place."""
    try:
        with path.open("x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        raise ValueError(f"{path} exists already; choose another --id") from None


def yaml_scalar(text: str) -> str:
    """`text` as one YAML double-quoted scalar on one line, escaped by the YAML emitter itself
    (newlines, tabs, quotes, backslashes and any character YAML would not keep as it is)."""
    dumped = yaml.safe_dump(text, default_style='"', allow_unicode=True, width=float("inf"))
    return dumped.rstrip("\n")
