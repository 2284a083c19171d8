"""`caveat rules diff`: what a change to the pack does to every case of the library."""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ..casefiles import read_cases
from ..cases import run_case
from ..cleantext import no_surrogates
from ..errors import PackError
from ..knowledge_base import KnowledgeBase


class CaseChange(BaseModel):
    """A case whose result changed, and how."""

    case: str
    path: str
    changes: list[str] = Field(description="'+ rule applies', '- rule no longer applies', ...")


class Diff(BaseModel):
    """What a change does to the case library."""

    base: str = Field(description="the pack before: a directory or a git revision")
    base_version: str
    version: str
    cases: int
    changed: list[CaseChange]
    unchanged: int


def materialise(base: str, pack: Path, into: Path) -> Path:
    """The pack as it is at BASE: a directory, or a git revision of the repository holding it.

    BASE never reaches git as an option: one starting with '-' is refused, and a revision is
    resolved to a commit id (`git rev-parse --verify --end-of-options BASE^{commit}`) before
    anything else is asked of git."""
    if base.startswith("-"):
        raise ValueError(
            f"BASE {base!r} starts with '-', which git would read as an option: give a git "
            f"revision or a pack directory (./{base} for a directory of that name)"
        )
    as_dir = Path(base)
    if as_dir.is_dir():
        return as_dir
    try:
        top = _git(pack, "rev-parse", "--show-toplevel").decode().strip()
        commit = _git(pack, "rev-parse", "--verify", "--end-of-options", f"{base}^{{commit}}")
        commit_id = commit.decode().strip()
        prefix = pack.resolve().relative_to(Path(top).resolve())
        archive = _git(
            Path(top),
            "archive",
            "--format=tar",
            "--end-of-options",
            commit_id,
            f":(literal){prefix}",
        )
    except (subprocess.CalledProcessError, FileNotFoundError, ValueError) as exc:
        detail = (
            exc.stderr.decode(errors="replace")
            if isinstance(exc, subprocess.CalledProcessError) and isinstance(exc.stderr, bytes)
            else str(exc)
        )
        detail = "; ".join(line.strip() for line in detail.splitlines() if line.strip())
        if "Needed a single revision" in detail:
            detail = f"git knows no commit {base!r} there"
        raise ValueError(
            f"{base!r} is neither a pack directory nor a git revision of the "
            f"repository holding {pack}: {detail or 'git failed'}"
        ) from None
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / prefix


def _git(cwd: Path, *args: str) -> bytes:
    """What a git command prints; CalledProcessError when it fails."""
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True).stdout


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
                        case=no_surrogates(entry.name),
                        path=no_surrogates(entry.path),
                        changes=[no_surrogates(c) for c in _describe_change(before, after)],
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
