"""A knowledge pack on disk: its manifest, vocabulary, caveats, sources and rule files.

Reading a pack collects every problem it finds, each located at file:line:column, instead of
stopping at the first; `KnowledgeBase` refuses a pack with any error, and `caveat rules check`
prints them all.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PureWindowsPath
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from .caveats import Caveat, CaveatFile
from .codelists import CodeList, check_subject, read_code_list
from .errors import PackProblem
from .evidence import Source, SourceRecord
from .manifest import MANIFEST, Category, ChangelogEntry, Manifest
from .reading import InputError, MiB, read_limited
from .references import check_references
from .rules import Rule, RuleFile
from .suggestions import did_you_mean
from .vocabulary import AmbiguousName, Concept, VocabularyFile
from .yamlfile import (
    Mark,
    PosDict,
    PosList,
    YamlProblem,
    key_mark,
    locate,
    parse_yaml_and_duplicates,
)

__all__ = [
    "MANIFEST",
    "Category",
    "ChangelogEntry",
    "Manifest",
    "PackContents",
    "RuleSite",
    "bundled_pack_path",
    "check_references",
    "read_pack",
]


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
    code_lists: list[CodeList] = field(default_factory=list)
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
            h.update(name.encode("utf-8", "surrogateescape") + b"\0" + content + b"\0")
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


PACK_FILE_LIMIT = 16 * MiB  # bytes of one pack file: a whole monograph is a few hundred KB


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

    def inside(
        self, value: str, base: Path, file: str, mark: Mark | None, what: str, example: str
    ) -> Path | None:
        """`base / value`, a path written in the pack (relative to `base`), when it is relative
        and stays inside the pack once symbolic links are resolved; else a problem, and None."""
        problem = _path_problem(value, example) or self.outside(base / value)
        if problem is None:
            return base / value
        self.problem(file, mark, f"{what}: {value!r} {problem}", "path")
        return None

    def outside(self, path: Path) -> str | None:
        """Why a path of the pack leaves it (symbolic links resolved), or None when it does not."""
        try:
            real, top = path.resolve(), self.root.resolve()
        except (OSError, RuntimeError) as exc:  # RuntimeError: a loop of symbolic links
            return f"cannot be resolved ({exc}); pack paths stay inside the pack"
        if real == top or real.is_relative_to(top):
            return None
        return (
            f"leads outside the pack (to {real}); pack paths are relative to the directory "
            f"that holds {MANIFEST} and stay inside it, symbolic links too"
        )

    def read(self, path: Path) -> Any:
        name = self.rel(path)
        outside = self.outside(path)
        if outside is not None:
            self.problem(name, None, outside, "path")
            return None
        try:
            raw = read_limited(path, PACK_FILE_LIMIT, "a pack file", "", pipes=False)
        except InputError as exc:
            self.problem(name, None, exc.reason, "io")
            return None
        self.pack.files[str(path.relative_to(self.root))] = raw
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.problem(name, None, f"not UTF-8 text: {exc}", "io")
            return None
        try:
            # the file is still checked, with the value YAML would keep for a duplicate key
            data, duplicates = parse_yaml_and_duplicates(text, name)
        except YamlProblem as exc:
            self.problem(name, exc.mark, exc.message, "yaml")
            return None
        for dup in duplicates:
            self.problem(name, dup.mark, dup.message, "duplicate-key")
        if data is None:
            self.problem(name, None, "the file is empty (or holds only comments)", "yaml")
        return data

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
                    # the key as written (a key holding brackets looks like a union tag to
                    # _clean_loc, which would drop it)
                    key = err["loc"][-1]
                    known = _field_names()
                    msg = f"unknown key {key!r}{did_you_mean(str(key), known)}"
                    parent = _parent(data, loc if loc[-1:] == (key,) else (*loc, key))
                    mark = key_mark(parent, str(key)) or mark
                    where = where or _loc_text(prefix)
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

    name = reader.rel(manifest_path)

    def part(key: str, value: str, example: str, index: int | None = None) -> Path | None:
        loc = (key,) if index is None else (key, index)
        mark = locate(data, loc) if isinstance(data, dict) and key in data else None
        what = key if index is None else f"{key}[{index}]"
        return reader.inside(value, root, name, mark, what, example)

    if (concepts := part("concepts", manifest.concepts, "concepts.yaml")) is not None:
        _read_concepts(reader, concepts)
    for i, listed in enumerate(manifest.code_lists):
        if (code_list := part("code_lists", listed, "codelists/drugs.yaml", i)) is not None:
            read_code_list(reader, code_list)
    check_subject(pack, data, name, reader.problem)
    if (caveats := part("caveats", manifest.caveats, "caveats.yaml")) is not None:
        _read_caveats(reader, caveats)
    for i, src in enumerate(manifest.sources):
        if (record := part("sources", src, "sources/monograph.yaml", i)) is not None:
            _read_source(reader, record)
    rules_dir = part("rules", manifest.rules, "rules")
    if rules_dir is not None:
        why = "no rule files (*.yaml) found"
        try:
            files = sorted(rules_dir.rglob("*.yaml")) if rules_dir.is_dir() else []
        except OSError as exc:  # a name too long, a directory that cannot be listed
            files, why = [], f"cannot read: {exc.strerror or exc}"
        if not files:
            reader.problem(reader.rel(rules_dir), None, why, "io")
        for path in files:
            _read_rules(reader, path)
    check_references(pack)
    return pack


def _path_problem(value: str, example: str) -> str | None:
    """Why a path written in a pack is not one (relative, plain text), or None."""
    if not value:
        return f"is empty: name a file or directory of the pack, e.g. {example}"
    control = next((ch for ch in value if unicodedata.category(ch) == "Cc"), None)
    if control is not None:
        return (
            f"holds a control character (U+{ord(control):04X}): write a plain path, e.g. {example}"
        )
    if value.startswith(("/", "\\")) or PureWindowsPath(value).drive:
        return (
            f"is not a path relative to the pack: write it relative to the directory that holds "
            f"{MANIFEST}, e.g. {example}"
        )
    return None


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
    text_path = reader.inside(
        record.text, path.parent, name, locate(data, ("text",)), "text", f"{record.id}.txt"
    )
    if text_path is None:
        return
    try:
        raw = read_limited(text_path, PACK_FILE_LIMIT, "a source text", "", pipes=False)
        text = raw.decode("utf-8")
    except (InputError, OSError, UnicodeDecodeError) as exc:
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


def bundled_pack_path() -> Path:
    """The pack shipped with the package (installed), or the repository's rules/ (checkout)."""
    here = Path(__file__).resolve().parent
    installed = here / "_pack"
    if (installed / MANIFEST).is_file():
        return installed
    return here.parent / "rules"
