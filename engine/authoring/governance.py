"""Governed changes to a pack: a release that records its digest only when the pack passes its
checks, its tests and full coverage; and a review recorded in the rule file it covers.

Both edit YAML as text, so the author's comments and layout stay as written. Text from the command
line (changes, reviewers, notes) goes in as YAML scalars escaped by the YAML emitter, and is refused
if it holds control characters other than newline and tab. Each file is written whole to a
temporary file beside it, read back and checked there, and only then renamed over the old one; the
pack is read back before success is reported: a change is made entirely or not at all.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..casefiles import read_cases
from ..cases import run_case
from ..errors import PackError
from ..knowledge_base import KnowledgeBase
from ..pack import MANIFEST, ChangelogEntry, Manifest, PackContents, read_pack
from ..rules import Rule
from ..suggestions import did_you_mean
from ..yamlfile import PosDict, PosList, YamlProblem, parse_yaml
from .check import check_pack
from .coverage import coverage
from .library import default_cases
from .scaffold import yaml_scalar


class Refused(ValueError):
    """A governed change cannot be made; the message says why and what to do."""


MAX_REVIEWER = 200  # the longest `by` a Review holds


def write_atomically(path: Path, text: str, check: Callable[[Path], None] | None = None) -> None:
    """Replace a file's text whole: never half a file, whatever stops the write. `check` is given
    the new file, written beside the old one, before it replaces it: when it raises, the old file
    is left untouched."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
        os.chmod(temp, mode)
        if check is not None:
            check(Path(temp))
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def text_scalar(value: str, what: str, *, one_line: bool = False) -> str:
    """Text from the command line as a YAML scalar, or Refused when it holds a control character
    (newline and tab aside, and newline too for `one_line` text) or is not text at all."""
    for i, char in enumerate(value, start=1):
        if char == "\n" and one_line:
            raise Refused(f"{what} holds a line break (character {i}): write it on one line")
        if char in "\n\t":
            continue
        kind = unicodedata.category(char)
        if kind == "Cc":
            raise Refused(
                f"{what} holds the control character U+{ord(char):04X} (character {i}): "
                "remove it; newlines and tabs are kept"
            )
        if kind == "Cs":
            raise Refused(
                f"{what} is not valid text: a lone surrogate U+{ord(char):04X} (character {i}), "
                "which is what undecodable bytes on the command line become; write it in UTF-8"
            )
    return yaml_scalar(value)


def _first(exc: ValidationError) -> str:
    """The first problem a validation found, on one line."""
    err = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in err["loc"])
    return f"{where}: {err['msg']}" if where else err["msg"]


def _read_back(path: Path, name: str) -> Any:
    """A file just written, parsed again as the pack reader would; Refused with the reason."""
    try:
        return parse_yaml(path.read_bytes().decode("utf-8"), name)
    except (UnicodeDecodeError, YamlProblem, yaml.YAMLError) as exc:
        raise Refused(f"it would not read back: {exc}") from None


# -- release --------------------------------------------------------------------------------------


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def release_blockers(root: Path, cases: Sequence[str | Path] | None = None) -> list[str]:
    """Why the pack cannot be released: `rules check` errors (but the version's own, which the
    release fixes), failing cases of `rules test`, and coverage below 100%."""
    paths = [Path(p) for p in cases] if cases else default_cases(root)
    blockers: list[str] = []
    report = check_pack(root, paths or None)
    errors = [p for p in report.errors if p.code != "version"]
    if errors:
        blockers.append(
            f"`caveat rules check` reports {len(errors)} error(s); the first: {errors[0]}"
        )
        return blockers  # a pack with errors cannot be loaded to run its cases
    if not paths:
        return ["no case library found (fixtures/cases beside the pack): give --cases"]
    try:
        kb = KnowledgeBase.load(root)
    except PackError as exc:
        return [f"the pack does not load: {exc}"]
    bad = []
    total = 0
    for entry in read_cases(list(paths)):
        total += 1
        outcome = run_case(kb, entry)
        if outcome.status in ("fail", "error"):
            bad.append(f"{outcome.case} ({outcome.status}: {'; '.join(outcome.problems)})")
    if bad:
        blockers.append(
            f"`caveat rules test` has {len(bad)} of {total} case(s) failing; the first: {bad[0]}"
        )
    cover = coverage(kb, paths)
    if cover.rule_percent < 100 or cover.source_percent < 100:
        uncovered = [r.rule for r in cover.rules if r.status == "active" and not r.covered] + [
            f"sentence {s.number}" for s in cover.sentences if not s.covered
        ]
        blockers.append(
            f"`caveat rules coverage --fail-under 100` fails: rules {cover.rule_percent:.1f}%, "
            f"source {cover.source_percent:.1f}% (uncovered: {', '.join(uncovered[:5])}"
            f"{', ...' if len(uncovered) > 5 else ''})"
        )
    return blockers


def release(
    root: Path,
    version: str,
    changes: Sequence[str],
    date: str,
    cases: Sequence[str | Path] | None = None,
) -> str:
    """Set the pack's version and record a changelog entry with the pack's digest, once the pack
    passes `rules check`, `rules test` and `rules coverage --fail-under 100`. Returns the digest
    (what results of this version report)."""
    if not re.fullmatch(r"\d+\.\d+\.\d+", version):
        raise Refused(f"{version!r} is not a version like 1.2.0")
    if not changes:
        raise Refused("say what changed (--change TEXT)")
    scalars = [
        text_scalar(c, "--change" if len(changes) == 1 else f"--change #{i}")
        for i, c in enumerate(changes, start=1)
    ]
    contents = read_pack(root)
    if contents.manifest is None:
        raise Refused(f"{root / MANIFEST} cannot be read: fix it first (`caveat rules check`)")
    current = contents.manifest.version
    if _version_tuple(version) <= _version_tuple(current):
        raise Refused(f"{version} is not after the current version {current}")
    blockers = release_blockers(root, cases)
    if blockers:
        raise Refused(
            f"not releasing {version}: the pack must pass its checks first\n"
            + "\n".join(f"  - {b}" for b in blockers)
        )
    path = root / MANIFEST
    text = path.read_text(encoding="utf-8")
    text, count = re.subn(r"(?m)^version:[ \t]*\S+[ \t]*$", f"version: {version}", text, count=1)
    if count != 1:
        raise Refused(f"no top-level `version:` line in {path}")
    # the digest leaves the changelog out, so it is the same before and after the entry is added
    contents.files[MANIFEST] = text.encode("utf-8")
    digest = contents.digest()
    found = re.search(r"(?m)^changelog:[ \t]*\n((?:[ \t]*#.*\n)*)([ \t]*)-", text)
    indent = found.group(2) if found else "  "
    entry = (
        f"{indent}- version: {version}\n"
        f"{indent}  date: {date}\n"
        f"{indent}  changes:\n"
        + "".join(f"{indent}    - {scalar}\n" for scalar in scalars)
        + f"{indent}  digest: {digest}\n"
    )
    empty = re.search(r"(?m)^changelog:[ \t]*\[[ \t]*\][ \t]*(#.*)?$", text)
    if found:
        text = text[: found.start(2)] + entry + text[found.start(2) :]
    elif empty:
        text = text[: empty.start()] + "changelog:\n" + entry.rstrip("\n") + text[empty.end() :]
    elif re.search(r"(?m)^changelog:", text):
        raise Refused(
            f"the changelog in {path} is not a block list (`changelog:` then `  - version: ...`): "
            "write it as one to release"
        )
    else:
        text = text.rstrip("\n") + "\nchangelog:\n" + entry
    original = path.read_text(encoding="utf-8")
    expected = ChangelogEntry(
        version=version, date=dt.date.fromisoformat(date), changes=list(changes), digest=digest
    )

    def check(temp: Path) -> None:
        data = _read_back(temp, str(path))
        try:
            manifest = Manifest.model_validate(data, strict=True)
        except ValidationError as exc:
            raise Refused(f"it would not be a valid manifest: {_first(exc)}") from None
        contents.files[MANIFEST] = temp.read_bytes()
        if manifest.version != version or manifest.changelog[:1] != [expected]:
            raise Refused("the version or the changelog entry would not read back as given")
        if contents.digest() != digest:
            raise Refused("the pack's digest would change")

    try:
        write_atomically(path, text, check)
    except Refused as exc:
        raise Refused(
            f"the release could not be recorded in {path}; it was left as it was ({exc})"
        ) from None
    after = read_pack(root)
    if (
        after.errors
        or after.manifest is None
        or after.manifest.version != version
        or after.manifest.changelog[0].digest != digest
        or after.digest() != digest
    ):
        write_atomically(path, original)
        raise Refused(f"the release could not be recorded in {path}; it was left as it was")
    return digest


# -- review ---------------------------------------------------------------------------------------


def _unreleased(contents: PackContents) -> bool:
    manifest = contents.manifest
    assert manifest is not None
    entry = next((e for e in manifest.changelog if e.version == manifest.version), None)
    return entry is None or entry.digest != contents.digest()


def _review_text(
    indent: str, by: str, date: str, version: str, unreleased: bool, note: str | None
) -> str:
    lines = [
        f"{indent}- by: {yaml_scalar(by)}",
        f"{indent}  date: {date}",
        f"{indent}  version: {version}",
    ]
    if unreleased:
        lines.append(f"{indent}  unreleased: true")
    if note:
        lines.append(f"{indent}  note: {yaml_scalar(note)}")
    return "\n".join(lines) + "\n"


def _insert_review(lines: list[str], data: PosDict, end: int, entry: dict[str, object]) -> None:
    """Add a review to one rule's mapping, which spans lines[data.mark.line - 1 : end]."""
    assert data.mark is not None
    first = data.mark.line - 1
    indent = " " * (data.mark.column - 1)
    reviews = data.get("reviews")
    if isinstance(reviews, PosList) and reviews:
        key_line = data.key_marks["reviews"].line
        if reviews.mark is not None and reviews.mark.line == key_line:
            raise Refused(
                f"the reviews of rule {data.get('id')} are written in flow style ([...]); "
                "write them as a block list to add one"
            )
        later = [m.line - 1 for m in data.key_marks.values() if m.line > key_line]
        at = _last_content(lines, first, min(later, default=end)) + 1
        lines.insert(at, _review_text(" " * (reviews.item_marks[0].column - 3), **entry))
        return
    if "reviews" in data:  # `reviews: []`: that line is replaced
        del lines[data.key_marks["reviews"].line - 1]
        end -= 1
    at = _last_content(lines, first, end) + 1
    lines.insert(at, f"{indent}reviews:\n" + _review_text(indent + "  ", **entry))  # type: ignore[arg-type]


def _last_content(lines: list[str], start: int, stop: int) -> int:
    """The last line in [start, stop) that belongs to the rule: not blank, and not a comment
    standing at or left of the rule's keys (a '#' line indented further may be the text of a
    block scalar)."""
    keys = len(lines[start]) - len(lines[start].lstrip())
    if lines[start].lstrip().startswith("- "):
        keys += 2
    for i in range(min(stop, len(lines)) - 1, start - 1, -1):
        text = lines[i].lstrip()
        indent = len(lines[i]) - len(text)
        if text.strip() and not (text.startswith("#") and indent <= keys):
            return i
    return start


def review(
    root: Path, rule_ids: Sequence[str], by: str, date: str, note: str | None = None
) -> list[Path]:
    """Record a review of each rule in its rule file; returns the files changed. It is a pack
    edit like any other: the digest changes, and a release carries it."""
    if not by.strip():
        raise Refused("say who reviewed (--by NAME)")
    text_scalar(by, "--by", one_line=True)
    if len(by.strip()) > MAX_REVIEWER:
        raise Refused(
            f"--by is {len(by.strip())} characters long: a name has at most {MAX_REVIEWER}"
        )
    note = note or None  # an empty note is no note
    if note is not None:
        text_scalar(note, "--note")
    contents = read_pack(root)
    if contents.errors or contents.manifest is None:
        raise Refused(
            f"the pack has {len(contents.errors)} error(s): fix them first (`caveat rules check`)"
        )
    unknown = [r for r in rule_ids if r not in contents.sites]
    if unknown:
        raise Refused(f"no rule {unknown[0]!r}{did_you_mean(unknown[0], contents.sites)} in {root}")
    entry: dict[str, object] = {
        "by": by.strip(),
        "date": date,
        "version": contents.manifest.version,
        "unreleased": _unreleased(contents),
        "note": note,
    }
    by_file: dict[str, list[str]] = {}
    for rid in dict.fromkeys(rule_ids):
        by_file.setdefault(contents.sites[rid].file, []).append(rid)
    originals: dict[Path, str] = {}
    try:
        for file, rids in by_file.items():
            path = root.parent / file if not Path(file).is_absolute() else Path(file)
            text = path.read_text(encoding="utf-8")
            lines = text.splitlines(keepends=True)
            if lines and not lines[-1].endswith("\n"):
                lines[-1] += "\n"
            starts = sorted(
                (contents.sites[r].data.mark.line, r)
                for r in contents.sites
                if contents.sites[r].file == file
            )
            ends = {
                r: (starts[i + 1][0] - 1 if i + 1 < len(starts) else len(lines))
                for i, (_, r) in enumerate(starts)
            }
            for rid in sorted(rids, key=lambda r: -contents.sites[r].data.mark.line):
                data = contents.sites[rid].data
                if not isinstance(data, PosDict) or data.mark is None:
                    raise Refused(f"rule {rid} is not a block mapping in {file}")
                _insert_review(lines, data, ends[rid], entry)
            write_atomically(path, "".join(lines), _review_check(file, rids, entry))
            originals[path] = text
        after = read_pack(root)
        for rid in rule_ids:
            rule = next((r for r in after.rules if r.id == rid), None)
            added = rule.reviews[-1] if rule and rule.reviews else None  # appended last
            if (
                after.errors
                or added is None
                or (added.by, str(added.date), added.note) != (by.strip(), date, note)
            ):
                raise Refused(f"the review of {rid} could not be recorded; nothing was changed")
    except BaseException:
        for path, text in originals.items():
            write_atomically(path, text)
        raise
    return list(originals)


def _review_check(
    file: str, rule_ids: list[str], entry: dict[str, object]
) -> Callable[[Path], None]:
    """A check of a rule file written with a review added, before it replaces the old one: each
    rule reads back, and its last review is the one recorded."""

    def check(temp: Path) -> None:
        try:
            data = _read_back(temp, file)
        except Refused as exc:
            raise Refused(
                f"the review could not be recorded in {file}: {exc}; nothing was changed"
            ) from None
        items = data.get("rules") if isinstance(data, dict) else None
        found = {i.get("id"): i for i in items or [] if isinstance(i, dict)}
        for rid in rule_ids:
            try:
                rule = Rule.model_validate(found.get(rid), strict=True)
            except ValidationError as exc:
                raise Refused(
                    f"the review of {rid} could not be recorded in {file} ({_first(exc)}); "
                    "nothing was changed"
                ) from None
            last = rule.reviews[-1] if rule.reviews else None
            wanted = (entry["by"], entry["date"], entry["note"])
            if last is None or (last.by, str(last.date), last.note) != wanted:
                raise Refused(
                    f"the review of {rid} would not read back as given in {file}; "
                    "nothing was changed"
                )

    return check
