"""A knowledge pack on disk: its manifest, vocabulary, caveats, sources and rule files.

Reading a pack collects every problem it finds, each located at file:line:column, instead of
stopping at the first; `KnowledgeBase` refuses a pack with any error, and `caveat rules check`
prints them all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

from . import terminology
from .caveats import Caveat, CaveatFile
from .conditions import HasCondition, HasMedication, when_nodes
from .errors import PackProblem
from .evidence import Source, SourceRecord
from .rules import CategoryId, Rule, RuleFile
from .suggestions import did_you_mean
from .vocabulary import AmbiguousName, Concept, VocabularyFile
from .yamlfile import (
    Mark,
    PosDict,
    PosList,
    YamlProblem,
    duplicate_keys,
    key_mark,
    locate,
    parse_yaml,
)

MANIFEST = "pack.yaml"


class Category(BaseModel):
    """A group of statements, in the order results list them."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    id: CategoryId = Field(description="what rules name as their category")
    label: str = Field(description="the heading people read")


class ChangelogEntry(BaseModel):
    """One release of the pack."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    version: str = Field(description="the version released")
    date: dt.date | None = Field(default=None, description="when")
    changes: list[str] = Field(min_length=1, description="what changed, for reviewers")
    digest: str | None = Field(
        default=None,
        description="the pack's digest as released: what results report as knowledge_base.digest",
    )


class Manifest(BaseModel):
    """pack.yaml: what the pack is, where its parts are, who stands behind it, and its releases."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    version: Annotated[str, StringConstraints(pattern=r"^\d+\.\d+\.\d+$")]
    title: str
    description: str | None = None
    subject: str | None = Field(default=None, description="the drug concept the pack is about")
    categories: list[Category] = Field(min_length=1)
    concepts: str = "concepts.yaml"
    caveats: str = "caveats.yaml"
    sources: list[str] = Field(min_length=1)
    rules: str = "rules"
    cases: str | None = Field(default=None, description="the pack's case library, relative path")
    publisher: str | None = Field(default=None, description="who publishes the pack")
    authors: list[str] = Field(default_factory=list, description="who wrote the rules")
    reviewers: list[str] = Field(default_factory=list, description="who reviewed the pack")
    approved: dt.date | None = Field(
        default=None, description="when the pack was approved for use (none: not approved)"
    )
    approved_by: str | None = Field(default=None, description="who approved it")
    last_reviewed: dt.date | None = Field(default=None, description="the last review of the pack")
    review_every_months: int | None = Field(
        default=None, ge=1, le=120, description="how often the pack and its rules are reviewed"
    )
    next_review: dt.date | None = Field(
        default=None, description="when the pack is next due for review (instead of an interval)"
    )
    copyright: str | None = Field(
        default=None, description="copyright and licence of the source text and of the pack"
    )
    changelog: list[ChangelogEntry] = Field(default_factory=list)


@dataclass
class RuleSite:
    """Where a rule was written: for messages and for editors."""

    file: str
    data: Any  # the rule's PosDict

    @property
    def mark(self) -> Mark | None:
        """Where the rule starts, when its data kept its place."""
        return self.data.mark if isinstance(self.data, PosDict) else None


@dataclass
class PackContents:
    """Everything read from a pack directory, validated piece by piece."""

    root: Path
    manifest: Manifest | None = None
    concepts: list[Concept] = field(default_factory=list)
    ambiguous: list[AmbiguousName] = field(default_factory=list)
    caveats: list[Caveat] = field(default_factory=list)
    sources: dict[str, Source] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    sites: dict[str, RuleSite] = field(default_factory=dict)
    concept_sites: dict[str, tuple[str, Any]] = field(default_factory=dict)
    scaffolded: set[str] = field(default_factory=set)  # rule ids in files still holding a TODO
    # relative path -> content, for the digest
    files: dict[str, bytes] = field(default_factory=dict)
    manifest_data: Any = None  # the manifest as read, for positions
    problems: list[PackProblem] = field(default_factory=list)

    @property
    def errors(self) -> list[PackProblem]:
        return [p for p in self.problems if p.severity == "error"]

    def digest(self) -> str:
        """The pack's one digest, in results, in the changelog and in `caveat --version`: a
        SHA-256 of every file of the pack, the manifest taken without its changelog (which
        records digests, so cannot be part of one) and without its comments or layout."""
        h = hashlib.sha256()
        for name in sorted(self.files):
            content = self.files[name]
            if name == MANIFEST:
                content = _manifest_for_digest(content)
            h.update(name.encode() + b"\0" + content + b"\0")
        return h.hexdigest()


def _manifest_for_digest(raw: bytes) -> bytes:
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError):
        return raw
    if not isinstance(data, dict):
        return raw
    data = {k: v for k, v in data.items() if k != "changelog"}
    return json.dumps(data, sort_keys=True, default=str, ensure_ascii=False).encode()


def _clean_loc(loc: Iterable[Any]) -> tuple[Any, ...]:
    out: list[Any] = []
    for part in loc:
        if isinstance(part, str) and (
            any(ch in part for ch in "[](),'") or part in ("condition-tree", "str", "float", "int")
        ):
            continue
        if out and isinstance(part, str) and out[-1] == part:
            continue
        out.append(part)
    return tuple(out)


def _loc_text(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class PackReader:
    def __init__(self, root: Path) -> None:
        self.pack = PackContents(root=root)
        self.root = root

    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root.parent))
        except ValueError:
            return str(path)

    def problem(self, file: str, mark: Any, message: str, code: str = "pack", **kw: Any) -> None:
        line, col = (mark.line, mark.column) if mark else (0, 0)
        self.pack.problems.append(
            PackProblem(file=file, line=line, column=col, message=message, code=code, **kw)
        )

    def read(self, path: Path) -> Any:
        name = self.rel(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            self.problem(name, None, f"cannot read: {exc.strerror or exc}", "io")
            return None
        self.pack.files[str(path.relative_to(self.root))] = raw
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.problem(name, None, f"not UTF-8 text: {exc}", "io")
            return None
        for dup in duplicate_keys(text, name):
            self.problem(name, dup.mark, dup.message, "duplicate-key")
        try:
            # the file is still checked, with the value YAML would keep for a duplicate key
            return parse_yaml(text, name, keep_duplicates=True)
        except YamlProblem as exc:
            self.problem(name, exc.mark, exc.message, "yaml")
            return None

    def validate(self, model: Any, data: Any, file: str, prefix: tuple[Any, ...] = ()) -> Any:
        try:
            if isinstance(model, TypeAdapter):
                return model.validate_python(data, strict=True)
            return model.model_validate(data, strict=True)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                loc = _clean_loc(err["loc"])
                mark = locate(data, loc)
                where = _loc_text(prefix + loc)
                msg = err["msg"]
                if err["type"] == "extra_forbidden":
                    known = _field_names()
                    msg = f"unknown key {loc[-1]!r}{did_you_mean(str(loc[-1]), known)}"
                    mark = key_mark(_parent(data, loc), str(loc[-1])) or mark
                self.problem(file, mark, f"{where}: {msg}" if where else msg, "schema")
            return None


def _parent(data: Any, loc: tuple[Any, ...]) -> Any:
    current = data
    for part in loc[:-1]:
        try:
            current = current[part]
        except (KeyError, IndexError, TypeError):
            return current
    return current


@lru_cache(maxsize=1)
def _field_names() -> tuple[str, ...]:
    names: set[str] = set()
    from . import conditions as c

    for cls in (
        Manifest,
        Category,
        ChangelogEntry,
        Concept,
        Caveat,
        SourceRecord,
        Rule,
        c.ConceptQuery,
        c.Compare,
        RuleFile,
        VocabularyFile,
        CaveatFile,
    ):
        names.update(info.alias or name for name, info in cls.model_fields.items())
    return tuple(sorted(names))


def read_pack(root: str | Path) -> PackContents:
    """Read and validate a pack directory; problems are collected, not raised."""
    root = Path(root)
    reader = PackReader(root)
    pack = reader.pack
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        reader.problem(
            reader.rel(manifest_path), None, f"no {MANIFEST}: is {root} a knowledge pack?", "io"
        )
        return pack
    data = reader.read(manifest_path)
    if data is None:
        return pack
    pack.manifest_data = data
    pack.manifest = manifest = reader.validate(Manifest, data, reader.rel(manifest_path))
    if manifest is None:
        return pack

    _read_concepts(reader, root / manifest.concepts)
    _read_caveats(reader, root / manifest.caveats)
    for src in manifest.sources:
        _read_source(reader, root / src)
    rules_dir = root / manifest.rules
    files = sorted(rules_dir.rglob("*.yaml")) if rules_dir.is_dir() else []
    if not files:
        reader.problem(reader.rel(rules_dir), None, "no rule files (*.yaml) found", "io")
    for path in files:
        _read_rules(reader, path)
    check_references(pack)
    return pack


def _read_concepts(reader: PackReader, path: Path) -> None:
    data = reader.read(path)
    if data is None:
        return
    name = reader.rel(path)
    parsed = _validate_items(
        reader, VocabularyFile, Concept, data, "concepts", name, also=("ambiguous",)
    )
    for concept, item in parsed:
        if concept.id in reader.pack.concept_sites:
            reader.problem(name, locate(item, ("id",)), f"duplicate concept id {concept.id!r}")
            continue
        reader.pack.concepts.append(concept)
        reader.pack.concept_sites[concept.id] = (name, item)
    entries = data.get("ambiguous") if isinstance(data, dict) else None
    if entries is None:
        return
    if not isinstance(entries, list):
        reader.problem(name, key_mark(data, "ambiguous"), "ambiguous: expected a list")
        return
    for i, item in enumerate(entries):
        entry = reader.validate(AmbiguousName, item, name, prefix=("ambiguous", i))
        if entry is None:
            continue
        reader.pack.ambiguous.append(entry)
        for j, cid in enumerate(entry.concepts):
            if not any(c.id == cid for c in reader.pack.concepts):
                known = [c.id for c in reader.pack.concepts]
                reader.problem(
                    name,
                    locate(item, ("concepts", j)),
                    f"ambiguous[{i}]: unknown concept {cid!r}{did_you_mean(cid, known)}",
                    "unknown-concept",
                )


def _read_caveats(reader: PackReader, path: Path) -> None:
    data = reader.read(path)
    if data is None:
        return
    name = reader.rel(path)
    seen: set[str] = set()
    for caveat, item in _validate_items(reader, CaveatFile, Caveat, data, "caveats", name):
        if caveat.code in seen:
            reader.problem(name, locate(item, ("code",)), f"duplicate caveat code {caveat.code!r}")
            continue
        seen.add(caveat.code)
        reader.pack.caveats.append(caveat)


def _read_source(reader: PackReader, path: Path) -> None:
    data = reader.read(path)
    if data is None:
        return
    name = reader.rel(path)
    record = reader.validate(SourceRecord, data, name)
    if record is None:
        return
    text_path = path.parent / record.text
    try:
        raw = text_path.read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reader.problem(
            name, locate(data, ("text",)), f"cannot read source text {record.text}: {exc}"
        )
        return
    reader.pack.files[str(text_path.relative_to(reader.root))] = raw
    if record.id in reader.pack.sources:
        reader.problem(name, locate(data, ("id",)), f"duplicate source id {record.id!r}")
        return
    source = Source(record, text)
    reader.pack.sources[record.id] = source
    for i, excl in enumerate(record.not_encoded):
        if source.find(excl.quote) < 0:
            near = source.nearest_sentence(excl.quote)
            hint = f"; nearest sentence {near.number}: {near.text!r}" if near else ""
            reader.problem(
                name,
                locate(data, ("not_encoded", i, "quote")),
                f"not_encoded[{i}].quote is not in the source text{hint}",
                "quote",
            )


PLACEHOLDER = "TODO"


def placeholders(data: Any, path: str = "") -> Iterator[tuple[str, str, Mark | None]]:
    """Strings left as TODO by `caveat rules new`, with where they are."""
    if isinstance(data, PosDict):
        items: Iterable[tuple[Any, Any, Mark | None]] = (
            (k, v, data.value_marks.get(k)) for k, v in data.items()
        )
    elif isinstance(data, PosList):
        items = ((i, v, data.item_marks[i]) for i, v in enumerate(data))
    else:
        return
    for key, value, mark in items:
        where = f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else key)
        if isinstance(value, str) and value.startswith(PLACEHOLDER):
            yield where, value, mark
        else:
            yield from placeholders(value, where)


def _read_rules(reader: PackReader, path: Path) -> None:
    data = reader.read(path)
    if data is None:
        return
    name = reader.rel(path)
    todo = list(placeholders(data))
    for where, value, mark in todo:
        hint = value.removeprefix(PLACEHOLDER).lstrip(": ") or "fill it in"
        reader.problem(
            name, mark, f"{where}: placeholder left by `caveat rules new`: {hint}", "placeholder"
        )
    if todo:
        # a scaffold: nothing else in it is worth reporting until it is filled in
        items = data.get("rules") if isinstance(data, dict) else None
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                reader.pack.scaffolded.add(item["id"])
        return
    for rule, item in _validate_items(reader, RuleFile, Rule, data, "rules", name):
        if rule.id in reader.pack.sites:
            first = reader.pack.sites[rule.id]
            reader.problem(
                name,
                locate(item, ("id",)),
                f"duplicate rule id {rule.id!r} (first in {first.file}); "
                "rule ids are unique in a pack",
                "duplicate-rule",
            )
            continue
        reader.pack.rules.append(rule)
        reader.pack.sites[rule.id] = RuleSite(name, item)


def _validate_items(
    reader: PackReader,
    file_model: Any,
    item_model: Any,
    data: Any,
    key: str,
    name: str,
    also: tuple[str, ...] = (),
) -> list[tuple[Any, Any]]:
    """Validate a `{key: [items]}` file item by item, so one bad item does not hide the rest
    (the keys in `also` are the caller's to read)."""
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        reader.validate(file_model, data, name)
        return []
    extra = [k for k in data if k != key and k not in also]
    for k in extra:
        reader.problem(name, key_mark(data, k), f"unknown key {k!r} (a file holds only {key!r})")
    out = []
    for i, item in enumerate(data[key]):
        obj = reader.validate(item_model, item, name, prefix=(key, i))
        if obj is not None:
            out.append((obj, item))
    if not data[key]:
        reader.problem(name, locate(data, (key,)), f"{key} is empty")
    return out


def check_references(pack: PackContents) -> None:
    """Cross-file checks: every id a file names exists and means what it is used for."""
    concepts = {c.id: c for c in pack.concepts}
    problems = pack.problems

    def at(file: str, data: Any, loc: tuple[Any, ...], message: str, code: str) -> None:
        mark = locate(data, loc)
        problems.append(
            PackProblem(
                file=file,
                line=mark.line if mark else 0,
                column=mark.column if mark else 0,
                message=message,
                code=code,
            )
        )

    # vocabulary
    names: dict[str, str] = {}
    codes: dict[tuple[str, str], str] = {}
    from .vocabulary import normalise_text

    for concept in pack.concepts:
        file, data = pack.concept_sites[concept.id]
        for i, parent in enumerate(concept.is_a):
            if parent not in concepts:
                at(
                    file,
                    data,
                    ("is_a", i),
                    f"is_a: unknown concept {parent!r}{did_you_mean(parent, concepts)}",
                    "unknown-concept",
                )
            elif concepts[parent].kind != concept.kind:
                at(
                    file,
                    data,
                    ("is_a", i),
                    f"is_a: {parent!r} is a {concepts[parent].kind}, "
                    f"{concept.id!r} is a {concept.kind}",
                    "concept-kind",
                )
        for i, text in enumerate([concept.label, *concept.synonyms]):
            key = normalise_text(text)
            owner = names.setdefault(key, concept.id)
            if owner != concept.id:
                loc = ("label",) if i == 0 else ("synonyms", i - 1)
                at(
                    file,
                    data,
                    loc,
                    f"{text!r} already names concept {owner!r}; a name must recognise one concept",
                    "ambiguous-name",
                )
        for i, code in enumerate(concept.codes):
            key2 = (
                code.system,
                terminology.normalise_icd(code.code)
                if code.system == "ICD-10-CM"
                else code.code.upper(),
            )
            owner = codes.setdefault(key2, concept.id)
            if owner != concept.id:
                at(
                    file,
                    data,
                    ("codes", i),
                    f"code {code.system} {code.code} is already bound to {owner!r}",
                    "ambiguous-code",
                )
            if code.system == "ICD-10-CM" and not terminology.looks_like_icd(code.code):
                at(
                    file,
                    data,
                    ("codes", i, "code"),
                    f"{code.code!r} is not shaped like an ICD-10-CM code (e.g. G25.81)",
                    "icd-code",
                )
    for entry in pack.ambiguous:
        owner = names.get(normalise_text(entry.name))
        if owner is not None:
            file, data = pack.concept_sites[owner]
            at(
                file,
                data,
                ("id",),
                f"{entry.name!r} is listed as ambiguous and also names concept {owner!r}: keep one",
                "ambiguous-name",
            )
    for concept in pack.concepts:
        if _has_cycle(concept.id, concepts):
            file, data = pack.concept_sites[concept.id]
            at(file, data, ("is_a",), f"is_a cycle through {concept.id!r}", "concept-cycle")

    manifest = pack.manifest
    if manifest is not None and manifest.subject and manifest.subject not in concepts:
        at(
            str(MANIFEST),
            pack.manifest_data,
            ("subject",),
            f"subject: unknown concept {manifest.subject!r}",
            "unknown-concept",
        )

    # rules
    caveats = {c.code for c in pack.caveats}
    categories = {c.id for c in pack.manifest.categories} if pack.manifest else set()
    for rule in pack.rules:
        site = pack.sites[rule.id]
        if categories and rule.category not in categories:
            at(
                site.file,
                site.data,
                ("category",),
                f"unknown category {rule.category!r}"
                f"{did_you_mean(rule.category, categories)}; categories are listed in pack.yaml",
                "unknown-category",
            )
        for i, use in enumerate(rule.caveats):
            if use.code not in caveats:
                at(
                    site.file,
                    site.data,
                    ("caveats", i, "code"),
                    f"unknown caveat code {use.code!r}{did_you_mean(use.code, caveats)}",
                    "unknown-caveat",
                )
        if len(set(rule.caveat_codes)) != len(rule.caveats):
            at(site.file, site.data, ("caveats",), "a caveat code is listed twice", "schema")
        source = pack.sources.get(rule.evidence.source)
        for i, use in enumerate(rule.caveats):
            if source is not None and source.find(use.support) < 0:
                near = source.nearest_sentence(use.support)
                hint = f"; nearest source sentence {near.number}: {near.text!r}" if near else ""
                at(
                    site.file,
                    site.data,
                    ("caveats", i, "support"),
                    f"caveats[{i}] ({use.code}): its support is not in source {source.id!r}: "
                    f"give the verbatim words behind the caveat{hint}",
                    "caveat-support",
                )
        if source is None:
            at(
                site.file,
                site.data,
                ("evidence", "source"),
                f"unknown source "
                f"{rule.evidence.source!r}{did_you_mean(rule.evidence.source, pack.sources)}",
                "unknown-source",
            )
        elif source.find(rule.evidence.quote) < 0:
            near = source.nearest_sentence(rule.evidence.quote)
            hint = f"; nearest source sentence {near.number}: {near.text!r}" if near else ""
            at(
                site.file,
                site.data,
                ("evidence", "quote"),
                f"quote not found in source {source.id!r}{hint}",
                "quote",
            )
        _check_when(rule, site, concepts, at)


def _check_when(rule: Rule, site: RuleSite, concepts: dict[str, Concept], at: Any) -> None:
    if rule.when == "always":
        return
    when_data = site.data.get("when") if isinstance(site.data, dict) else None
    for leaf, data in when_nodes(rule.when, when_data):
        if not isinstance(leaf, HasCondition | HasMedication):
            continue
        want = "condition" if isinstance(leaf, HasCondition) else "drug"
        where = data if data is not None else site.data
        loc = (leaf.kind,) if data is not None else ("when",)
        for cid in (leaf.concept, *leaf.excluded):
            concept = concepts.get(cid)
            if concept is None:
                message = f"when: unknown concept {cid!r}{did_you_mean(cid, concepts)}"
                at(site.file, where, loc, message, "unknown-concept")
            elif concept.kind != want:
                message = f"when: {leaf.kind} names {cid!r}, which is a {concept.kind}"
                at(site.file, where, loc, message, "concept-kind")


def _has_cycle(start: str, concepts: dict[str, Concept]) -> bool:
    todo = list(concepts[start].is_a)
    seen: set[str] = set()
    while todo:
        node = todo.pop()
        if node == start:
            return True
        if node in seen or node not in concepts:
            continue
        seen.add(node)
        todo.extend(concepts[node].is_a)
    return False


def bundled_pack_path() -> Path:
    """The pack shipped with the package (installed), or the repository's rules/ (checkout)."""
    here = Path(__file__).resolve().parent
    installed = here / "_pack"
    if (installed / MANIFEST).is_file():
        return installed
    return here.parent / "rules"
