"""Governed changes to a pack: a release that records its digest only when the pack passes its
checks, its tests and full coverage; and a review recorded in the rule file it covers.

Both edit YAML as text, so the author's comments and layout stay as written, and both write each
file whole (to a temporary file, then renamed) and read the pack back before they report success:
a change is made entirely or not at all.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..cases import read_cases, run_case
from ..errors import PackError
from ..knowledge_base import KnowledgeBase
from ..pack import MANIFEST, PackContents, read_pack
from ..suggestions import did_you_mean
from ..yamlfile import PosDict, PosList
from .check import check_pack
from .coverage import coverage
from .library import default_cases
from .scaffold import _yaml_str


class Refused(ValueError):
    """A governed change cannot be made; the message says why and what to do."""


def write_atomically(path: Path, text: str) -> None:
    """Replace a file's text whole: never half a file, whatever stops the write."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


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
        + "".join(f"{indent}    - {_yaml_str(c)}\n" for c in changes)
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
    write_atomically(path, text)
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
        f"{indent}- by: {_yaml_str(by)}",
        f"{indent}  date: {date}",
        f"{indent}  version: {version}",
    ]
    if unreleased:
        lines.append(f"{indent}  unreleased: true")
    if note:
        lines.append(f"{indent}  note: {_yaml_str(note)}")
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
            originals[path] = text
            write_atomically(path, "".join(lines))
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
