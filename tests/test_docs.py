"""docs/authoring.md cannot rot: its steps run here, on a copy of the pack, and every command must
print what the tutorial shows (`...` stands for text or lines left out)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import CASES, REPO, RULES

TUTORIAL = REPO / "docs" / "authoring.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def steps(markdown: str) -> list[tuple[str, str, str]]:
    """("file", path, content) and ("run", command, expected output), in order."""
    out: list[tuple[str, str, str]] = []
    for lang, body in FENCE.findall(markdown):
        if lang == "yaml" and body.startswith("# file: "):
            first, _, rest = body.partition("\n")
            out.append(("file", first.removeprefix("# file: ").strip(), rest))
        elif lang == "console":
            command, expected = None, []
            for line in body.splitlines():
                if line.startswith("$ "):
                    if command is not None:
                        out.append(("run", command, "\n".join(expected)))
                    command, expected = line[2:], []
                else:
                    expected.append(line)
            if command is not None:
                out.append(("run", command, "\n".join(expected)))
    return out


def _line_matches(pattern: str, line: str) -> bool:
    parts = [re.escape(p) for p in pattern.split("...")]
    return re.fullmatch(".*".join(parts), line) is not None


def matches(expected: list[str], actual: list[str]) -> bool:
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(matches(expected[1:], actual[i:]) for i in range(len(actual) + 1))
    return (
        bool(actual) and _line_matches(expected[0], actual[0]) and matches(expected[1:], actual[1:])
    )


def test_the_matcher_itself():
    assert matches(["a ... c", "...", "z"], ["a b c", "x", "y", "z"])
    assert not matches(["a", "z"], ["a", "x", "z"])
    assert not matches(["a ... d"], ["a b c"])


def test_the_authoring_tutorial_is_true(tmp_path: Path):
    project = tmp_path / "project"
    shutil.copytree(RULES, project / "rules")
    shutil.copytree(CASES, project / "fixtures" / "cases")
    git = ["git", "-c", "user.email=docs@example.org", "-c", "user.name=docs"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run([*git, *command], cwd=project, check=True, capture_output=True)
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "COLUMNS": "110",
        "NO_COLOR": "1",
        "CAVEAT_TODAY": "2026-12-01",
    }
    plan = steps(TUTORIAL.read_text(encoding="utf-8"))
    assert [kind for kind, _, _ in plan].count("run") >= 9
    for kind, what, content in plan:
        if kind == "file":
            (project / what).write_text(content, encoding="utf-8")
            continue
        proc = subprocess.run(
            ["bash", "-c", what + " 2>&1"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        actual = proc.stdout.rstrip("\n").split("\n")
        expected = content.rstrip("\n").split("\n")
        assert matches(expected, actual), f"$ {what}\n--- tutorial\n{content}\n--- got\n" + (
            proc.stdout
        )
