from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from engine import KnowledgeBase, load_knowledge_base

# The ICD-10-CM index (engine.terminology) is written once per test session, in a directory of
# its own, never in the cache of whoever runs the tests; every process the tests start reads it.
os.environ.setdefault("CAVEAT_CACHE_DIR", tempfile.mkdtemp(prefix="caveat-test-cache-"))

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "rules"
FIXTURES = REPO / "fixtures"
CASES = FIXTURES / "cases"

settings.register_profile(
    "default",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "ci",
    parent=settings.get_profile("default"),
    derandomize=True,
    print_blob=True,
)
settings.load_profile("ci" if os.environ.get("CI") else "default")


def caveat(
    *args: str, stdin: str | None = None, cwd: Path = REPO, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run the command line as a user would, in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    return load_knowledge_base()


def edit(path: Path, old: str, new: str) -> None:
    """Replace one occurrence of `old` in a file (which must hold it)."""
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    """A copy of the bundled pack to plant faults in."""
    import shutil

    root = tmp_path / "rules"
    shutil.copytree(RULES, root)
    return root
