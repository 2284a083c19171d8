"""docs/scale.md's Dask example is run as it is written, on the fixture export, and gives the
rows `caveat population` gives."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import FIXTURES, REPO

from engine import load_knowledge_base
from engine.population import run_population

DOC = REPO / "docs" / "scale.md"
EXPORT = FIXTURES / "fhir" / "bulk" / "synthea-40"


def dask_example() -> str:
    text = DOC.read_text()
    after = text.split("With Dask directly", 1)[1]
    return re.search(r"```python\n(.*?)```", after, re.S).group(1)


def test_the_dask_example_runs_and_agrees_with_caveat_population(tmp_path: Path):
    script = tmp_path / "example.py"
    script.write_text(dask_example())
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "EXPORT": str(EXPORT)},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = run_population(
        EXPORT, kb=load_knowledge_base(), out=tmp_path / "rows.jsonl", workers=1
    )
    warned = ", ".join(summary.warning_patients) or "none"
    expected = f"{summary.patients_evaluated} patients on the drug; to review: {warned}"
    assert done.stdout.strip().splitlines()[-1] == expected


def test_the_spark_sketch_is_marked_as_untested():
    text = DOC.read_text()
    spark = text.split("### From Spark", 1)[1]
    assert "not tested here" in spark.splitlines()[0]
    assert "# UNTESTED SKETCH" in spark
