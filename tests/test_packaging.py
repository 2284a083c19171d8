"""The rule pack ships inside the package: a plain, non-editable install can load it."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import REPO, RULES


def test_the_wheel_carries_the_pack_and_loads_it(tmp_path: Path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = tmp_path.glob("caveat-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        zf.extractall(tmp_path / "site")
    for path in RULES.rglob("*"):
        if path.is_file():
            assert f"engine/_pack/{path.relative_to(RULES).as_posix()}" in names
    assert any(n.endswith("entry_points.txt") for n in names)
    # import the extracted package, not the checkout, from a directory without rules/
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import engine, engine.pack; kb = engine.load_knowledge_base();"
            "print(engine.__file__); print(kb.root); print(len(kb.rules))",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "site")},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    module, root, count = proc.stdout.split("\n")[:3]
    assert module.startswith(str(tmp_path / "site"))
    assert root == str(tmp_path / "site" / "engine" / "_pack")
    assert int(count) == 32
