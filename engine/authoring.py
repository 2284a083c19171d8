"""The rule author's tools: check a pack, measure coverage, scaffold a rule, and weigh a change.

`check_pack` finds every problem it can in a pack (each located at file:line:column); `coverage`
tells which rules have cases on both sides and which source sentences are encoded; `scaffold` starts
a rule from a source sentence; `diff` evaluates the case library against two versions of a pack.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from . import terminology
from .cases import Case, read_cases, run_case, split_case
from .compiler import Expander, Program, TooComplex
from .conditions import _ConceptTest, describe, when_nodes
from .errors import CompileError, PackError, PackProblem, ScenarioError
from .evidence import normalise_space
from .knowledge_base import KnowledgeBase
from .pack import MANIFEST, PackContents, read_pack
from .rules import Rule
from .vocabulary import Vocabulary, normalise_text
from .yamlfile import Mark, PosDict, PosList, locate

# -- content digest and versioning --------------------------------------------------------------


def content_digest(contents: PackContents) -> str:
    """SHA-256 of what the rules say: every file of the pack but its manifest."""
    h = hashlib.sha256()
    for name in sorted(contents.files):
        if name == MANIFEST:
            continue
        h.update(name.encode() + b"\0" + contents.files[name] + b"\0")
    return h.hexdigest()


def _mark_of(data: Any, fallback: Mark | None) -> Mark | None:
    return getattr(data, "mark", None) or fallback


# -- check ----------------------------------------------------------------------------------------


@dataclass
class CheckReport:
    problems: list[PackProblem] = field(default_factory=list)
    cases_dir: Path | None = None

    @property
    def errors(self) -> list[PackProblem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[PackProblem]:
        return [p for p in self.problems if p.severity == "warning"]


def _problem(file: str, mark: Mark | None, message: str, code: str, severity: str = "error"):
    return PackProblem(
        file=file,
        line=mark.line if mark else 0,
        column=mark.column if mark else 0,
        message=message,
        code=code,
        severity=severity,  # type: ignore[arg-type]
    )


def check_pack(root: str | Path, cases: Sequence[str | Path] | None = None) -> CheckReport:
    """Every problem of a pack: what loading reports, and what only an author needs to know."""
    root = Path(root)
    contents = read_pack(root)
    report = CheckReport(problems=list(contents.problems))
    add = report.problems.append

    if contents.manifest is None:
        return report
    vocab = Vocabulary(contents.concepts)
    sites = {rid: site.file for rid, site in contents.sites.items()}
    _check_conditions(contents, vocab, add)
    _check_duplicates(contents, vocab, add)
    _check_codes(contents, add)
    _check_version(contents, root, add)
    if not contents.errors:
        try:
            Program(contents.rules, vocab, sites)
        except CompileError as exc:
            report.problems.extend(exc.problems)
    report.cases_dir = _cases_exercise(contents, root, cases, add)
    report.problems.sort(key=lambda p: (p.severity != "error", p.file, p.line, p.column))
    return report


def _rel(root: Path, path: Path) -> str:
    try:
        return str(path.relative_to(root.parent))
    except ValueError:
        return str(path)


def _check_conditions(contents: PackContents, vocab: Vocabulary, add: Any) -> None:
    """Conditions, or parts of them, that can never hold."""
    expander = Expander(vocab)
    for rule in contents.rules:
        if rule.when == "always":
            continue
        site = contents.sites[rule.id]
        when_data = site.data.get("when") if isinstance(site.data, dict) else None
        fallback = site.data.value_marks.get("when") if isinstance(site.data, PosDict) else None
        reported: list[Any] = []
        for node, data in when_nodes(rule.when, when_data):
            if any(_inside(node, r) for r in reported):
                continue
            try:
                never = not expander.t(node)
            except TooComplex:  # the compiler reports it
                continue
            if never:
                reported.append(node)
                whole = node is rule.when
                what = "the condition" if whole else f"the part {describe(node)!r}"
                add(
                    _problem(
                        site.file,
                        _mark_of(data, fallback),
                        f"rule {rule.id}: {what} can never hold",
                        "never-holds",
                    )
                )
            elif (
                isinstance(node, _ConceptTest)
                and node.excluded
                and not expander.members(node.concept, node.excluded)
            ):
                reported.append(node)


def _inside(node: Any, ancestor: Any) -> bool:
    return any(n is node for n, _ in when_nodes(ancestor, None))


def _condition_key(expander: Expander, rule: Rule) -> tuple[Any, ...]:
    truth = frozenset(expander.truth(rule.when))
    unknown = frozenset(expander.unknown(rule.when))
    return truth, unknown


def _check_duplicates(contents: PackContents, vocab: Vocabulary, add: Any) -> None:
    """Two rules with equivalent conditions that make the same claim."""
    expander = Expander(vocab)
    seen: dict[tuple[Any, ...], Rule] = {}
    for rule in contents.rules:
        try:
            condition = _condition_key(expander, rule)
        except TooComplex:
            continue
        for claim in (
            ("quote", normalise_space(rule.evidence.quote)),
            ("statement", normalise_space(rule.statement)),
        ):
            key = (condition, claim)
            first = seen.setdefault(key, rule)
            if first is not rule:
                site = contents.sites[rule.id]
                add(
                    _problem(
                        site.file,
                        site.mark,
                        f"rule {rule.id} has the same conditions and {claim[0]} as rule "
                        f"{first.id}: merge them",
                        "duplicate-claim",
                    )
                )
                break


def _description_fits(description: str, names: Iterable[str]) -> bool:
    words = {w for n in names for w in normalise_text(n).split() if len(w) > 3}
    text = normalise_text(description)
    return any(w.rstrip("s") in text for w in words)


def _check_codes(contents: PackContents, add: Any) -> None:
    """ICD-10-CM codes that the terminology does not know, or that name something else."""
    for concept in contents.concepts:
        file, data = contents.concept_sites[concept.id]
        for i, code in enumerate(concept.codes):
            if code.system != "ICD-10-CM" or not terminology.looks_like_icd(code.code):
                continue
            mark = None
            if isinstance(data, PosDict) and isinstance(data.get("codes"), PosList):
                mark = data["codes"].item_marks[i]
            description = terminology.icd_description(code.code)
            if description is None:
                near = terminology.icd_nearest_valid(code.code)
                hint = f" (nearest valid: {near})" if near else ""
                add(
                    _problem(
                        file,
                        mark,
                        f"{concept.id}: {code.code} is not an ICD-10-CM code{hint}",
                        "icd-code",
                    )
                )
            elif not _description_fits(description, [concept.label, *concept.synonyms]):
                add(
                    _problem(
                        file,
                        mark,
                        f"{concept.id}: {code.code} is {description!r} in "
                        f"ICD-10-CM, which does not fit {concept.label!r}",
                        "icd-description",
                    )
                )


def _check_version(contents: PackContents, root: Path, add: Any) -> None:
    manifest = contents.manifest
    assert manifest is not None
    name = _rel(root, root / MANIFEST)
    digest = content_digest(contents)
    entry = next((e for e in manifest.changelog if e.version == manifest.version), None)
    version_at = locate(contents.manifest_data, ("version",))
    if entry is not None:
        index = manifest.changelog.index(entry)
        version_at = locate(contents.manifest_data, ("changelog", index)) or version_at
    if entry is None:
        add(
            _problem(
                name,
                version_at,
                f"version {manifest.version} has no changelog entry: add one "
                f"with its changes and `digest: {digest}`",
                "version",
            )
        )
    elif entry.digest is None:
        add(
            _problem(
                name,
                version_at,
                f"the changelog entry of {manifest.version} records no digest: "
                f"add `digest: {digest}`",
                "version",
            )
        )
    elif entry.digest != digest:
        add(
            _problem(
                name,
                version_at,
                f"the rules changed but the version did not: {manifest.version} "
                f"was released as {entry.digest[:12]}, the pack is now {digest[:12]}; bump "
                f"`version` and add a changelog entry with `digest: {digest}`",
                "version",
            )
        )


def default_cases(root: Path) -> list[Path]:
    """The case library that goes with a pack: fixtures/cases beside it, if there is one."""
    for candidate in (root.parent / "fixtures" / "cases", Path("fixtures") / "cases"):
        if candidate.is_dir():
            return [candidate]
    return []


def library(paths: Sequence[str | Path]) -> list[tuple[Any, Case | None]]:
    """The cases of a library, each with its expectations (None for an unreadable one)."""
    out: list[tuple[Any, Case | None]] = []
    for entry in read_cases(list(paths)):
        case = None
        if entry.error is None:
            try:
                case = split_case(entry.data, entry.name)
            except ScenarioError:
                case = None
        out.append((entry, case))
    return out


def _mentions(case: Case) -> set[str]:
    if case.expect is None:
        return set()
    e = case.expect
    return {*e.applies, *e.not_applies, *e.caveats, *e.undetermined}


def _cases_exercise(
    contents: PackContents, root: Path, cases: Sequence[str | Path] | None, add: Any
) -> Path | None:
    paths = [Path(p) for p in cases] if cases else default_cases(root)
    if not paths:
        return None
    mentioned: set[str] = set()
    for entry, case in library(paths):
        if case is None:
            continue
        mentioned |= _mentions(case)
        if (case.description or "").startswith("TODO"):
            add(
                _problem(
                    entry.path,
                    Mark(entry.line, 1) if entry.line else None,
                    f"case {case.name}: placeholder description left by `caveat rules new`",
                    "placeholder",
                    "warning",
                )
            )
    for rule in contents.rules:
        if rule.background or rule.id in mentioned:
            continue
        site = contents.sites[rule.id]
        add(
            _problem(
                site.file,
                site.mark,
                f"rule {rule.id}: no case exercises it (add a case where it applies and a "
                f"near miss where it must not; `caveat rules new` scaffolds both)",
                "unexercised",
                "warning",
            )
        )
    return paths[0]


# -- coverage -------------------------------------------------------------------------------------


class RuleCoverage(BaseModel):
    rule: str
    background: bool
    applies: list[str]
    near_misses: list[str]
    covered: bool


class SentenceCoverage(BaseModel):
    source: str
    number: int
    text: str
    rules: list[str]
    left_out: str | None
    covered: bool


class Coverage(BaseModel):
    rules: list[RuleCoverage]
    sentences: list[SentenceCoverage]
    rule_percent: float
    source_percent: float


def coverage(kb: KnowledgeBase, cases: Sequence[str | Path]) -> Coverage:
    """For each rule, the cases that show it applying and the near misses that show it not; for
    each claim sentence of the sources, the rules that encode it or why it is left out."""
    applies: dict[str, list[str]] = {r.id: [] for r in kb.rules}
    misses: dict[str, list[str]] = {r.id: [] for r in kb.rules}
    for entry, case in library(cases):
        if case is None or case.expect is None:
            continue
        outcome = run_case(kb, entry)
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
            background=r.background,
            applies=applies[r.id],
            near_misses=misses[r.id],
            covered=r.background or bool(applies[r.id] and misses[r.id]),
        )
        for r in kb.rules
    ]
    sentences = []
    for source in kb.sources.values():
        encoded: dict[int, list[str]] = {}
        for rule in kb.rules:
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
    conditional = [r for r in rows if not r.background]
    rule_percent = 100.0 * sum(r.covered for r in conditional) / max(1, len(conditional))
    source_percent = 100.0 * sum(s.covered for s in sentences) / max(1, len(sentences))
    return Coverage(
        rules=rows, sentences=sentences, rule_percent=rule_percent, source_percent=source_percent
    )


# -- scaffolding a rule ---------------------------------------------------------------------------


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
        f'    category: "TODO: one of {categories}"\n'
        '    statement: "TODO: what the sentence claims, in your own words"\n'
        f'    when: "TODO: the condition (concepts in the sentence: {suggestion})"\n'
        "    caveats: []\n"
        "    evidence:\n"
        f"      source: {source.id}\n"
        f"      quote: {_yaml_str(quote)}\n"
        "      basis: descriptive  # or controlled-trials, uncontrolled-trials, "
        "clinical-experience, off-label, investigational\n",
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
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- impact of a change ---------------------------------------------------------------------------


class CaseChange(BaseModel):
    case: str
    path: str
    changes: list[str]


class Diff(BaseModel):
    base: str
    base_version: str
    version: str
    cases: int
    changed: list[CaseChange]
    unchanged: int


def materialise(base: str, pack: Path, into: Path) -> Path:
    """The pack as it is at BASE: a directory, or a git revision of the repository holding it."""
    as_dir = Path(base)
    if as_dir.is_dir():
        return as_dir
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=pack,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        prefix = pack.resolve().relative_to(Path(top).resolve())
        archive = subprocess.run(
            ["git", "archive", "--format=tar", base, str(prefix)],
            cwd=top,
            check=True,
            capture_output=True,
        )
    except (subprocess.CalledProcessError, FileNotFoundError, ValueError) as exc:
        detail = (
            exc.stderr.decode().strip()
            if isinstance(exc, subprocess.CalledProcessError) and isinstance(exc.stderr, bytes)
            else str(exc)
        )
        raise ValueError(
            f"{base!r} is neither a pack directory nor a git revision of the "
            f"repository holding {pack}: {detail}"
        ) from None
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into / prefix


def _fingerprint(outcome: Any) -> dict[str, Any]:
    result = outcome.result
    if result is None:
        return {"status": "error", "problems": outcome.problems}
    return {
        "status": "evaluated",
        "statements": {s.rule: [c.code for c in s.caveats] for s in result.statements},
        "undetermined": {u.rule: u.needs for u in result.undetermined},
    }


def _describe_change(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    if before["status"] != after["status"]:
        if after["status"] == "error":
            return [f"now rejected: {'; '.join(after['problems'])}"]
        return ["now evaluates (was rejected)"]
    if before["status"] == "error":
        return [] if before == after else ["rejected differently"]
    out = []
    b, a = before["statements"], after["statements"]
    out += [f"+ {r} applies" + (f" [{', '.join(a[r])}]" if a[r] else "") for r in a if r not in b]
    out += [f"- {r} no longer applies" for r in b if r not in a]
    for r in a:
        if r in b and a[r] != b[r]:
            gained = [c for c in a[r] if c not in b[r]]
            lost = [c for c in b[r] if c not in a[r]]
            parts = [f"+{c}" for c in gained] + [f"-{c}" for c in lost]
            out.append(f"~ {r} caveats {' '.join(parts) or 'reordered'}")
    bu, au = before["undetermined"], after["undetermined"]
    out += [f"+ {r} undetermined (needs {', '.join(au[r])})" for r in au if r not in bu]
    out += [f"- {r} no longer undetermined" for r in bu if r not in au]
    return out


def diff(kb: KnowledgeBase, base: str, cases: Sequence[str | Path]) -> Diff:
    """Every case whose statements, caveats or undetermined rules change from BASE to now."""
    with tempfile.TemporaryDirectory(prefix="caveat-base-") as tmp:
        base_root = materialise(base, kb.root, Path(tmp))
        try:
            old = KnowledgeBase.load(base_root)
        except PackError as exc:
            raise ValueError(f"the pack at {base} does not load: {exc}") from None
        changed: list[CaseChange] = []
        total = 0
        for entry in read_cases(list(cases)):
            total += 1
            before = _fingerprint(run_case(old, entry))
            after = _fingerprint(run_case(kb, entry))
            if before != after:
                changed.append(
                    CaseChange(
                        case=entry.name, path=entry.path, changes=_describe_change(before, after)
                    )
                )
        return Diff(
            base=base,
            base_version=old.version,
            version=kb.version,
            cases=total,
            changed=changed,
            unchanged=total - len(changed),
        )


# -- releasing a version --------------------------------------------------------------------------


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def release(root: Path, version: str, changes: Sequence[str], date: str) -> str:
    """Set the pack's version and record a changelog entry with the content digest. The manifest
    is edited as text, so its comments and layout stay as the author wrote them."""
    if not re.fullmatch(r"\d+\.\d+\.\d+", version):
        raise ValueError(f"{version!r} is not a version like 1.2.0")
    if not changes:
        raise ValueError("say what changed (--change TEXT)")
    contents = read_pack(root)
    if contents.manifest is None:
        raise ValueError(f"{root / MANIFEST} cannot be read: fix it first (`caveat rules check`)")
    current = contents.manifest.version
    if _version_tuple(version) <= _version_tuple(current):
        raise ValueError(f"{version} is not after the current version {current}")
    path = root / MANIFEST
    text = path.read_text(encoding="utf-8")
    text, count = re.subn(r"(?m)^version:[ \t]*\S+[ \t]*$", f"version: {version}", text, count=1)
    if count != 1:
        raise ValueError(f"no top-level `version:` line in {path}")
    found = re.search(r"(?m)^changelog:[ \t]*\n((?:[ \t]*#.*\n)*)([ \t]*)-", text)
    indent = found.group(2) if found else "  "
    entry = (
        f"{indent}- version: {version}\n"
        f"{indent}  date: {date}\n"
        f"{indent}  changes:\n"
        + "".join(f"{indent}    - {_yaml_str(c)}\n" for c in changes)
        + f"{indent}  digest: {content_digest(contents)}\n"
    )
    if found:
        text = text[: found.start(2)] + entry + text[found.start(2) :]
    else:
        text = text.rstrip("\n") + "\nchangelog:\n" + entry
    path.write_text(text, encoding="utf-8")
    return content_digest(contents)
