"""`bench/run.py --baseline REV`: a revision measured beside the working tree, in one run.

The revision is checked out in a temporary git worktree and installed in a virtual environment
of its own; then the same probes run against each side in turn, alternating, repetition after
repetition, so that every ratio comes from the same minutes of the same (noisy) machine:

- evaluate: `evaluate()` over the same scenarios (generated once, by the working tree, and
  handed to both as JSON), scenarios per CPU-second of the probe process;
- batch: `caveat batch` over the same JSON Lines file with one worker, cases per CPU-second of the
  whole process tree (getrusage of the children, not wall-clock: the machine is too noisy);
- cold start: `caveat evaluate` on a one-case scenario with an ICD-10-CM code, and `import engine`,
  wall-clock seconds end to end (what a person waits for).

Each side runs its own code: the probes are small scripts run with that side's interpreter, which
imports that side's installed package.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

EVALUATE_PROBE = """
import json, sys, time
from engine import evaluate, load_knowledge_base
kb = load_knowledge_base()
scenarios = json.load(open(sys.argv[1]))
warm = json.load(open(sys.argv[2]))  # other scenarios: no answer cached for those measured
for s in warm:  # warm up, and load ICD-10-CM once (some fixture cases give codes)
    evaluate(s, knowledge_base=kb)
evaluate({"conditions": [{"code": "G40.A09", "system": "ICD-10-CM"}]}, knowledge_base=kb)
matcher = kb.matcher
if hasattr(matcher, "set_answer_cache"):  # empty: hits are those within the measured pass
    matcher.set_answer_cache(matcher.answers)
hits, misses = getattr(matcher, "hits", None), getattr(matcher, "misses", None)
start = time.process_time()
for s in scenarios:
    evaluate(s, knowledge_base=kb)
cpu = time.process_time() - start
found = {"cpu": cpu, "n": len(scenarios)}
if hits is not None:
    found["hits"], found["misses"] = matcher.hits - hits, matcher.misses - misses
print(json.dumps(found))
"""

ONE_CASE = "conditions:\n  - {code: G40.A09, system: ICD-10-CM}\npatient: {age: 9}\n"


@dataclass(frozen=True)
class Side:
    """One side of the comparison: a tree and the interpreter that runs its installed code."""

    name: str
    tree: Path
    python: Path

    @property
    def caveat(self) -> list[str]:
        return [str(self.python), "-m", "engine"]


def working_tree() -> Side:
    return Side("working tree", REPO, Path(sys.executable))


@contextmanager
def baseline(rev: str) -> Iterator[Side]:
    """REV checked out in a temporary worktree with a virtual environment of its own."""
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", "--end-of-options", f"{rev}^{{commit}}"],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    if commit.returncode != 0:
        raise SystemExit(f"--baseline {rev}: not a revision of this repository")
    sha = commit.stdout.strip()
    tmp = Path(tempfile.mkdtemp(prefix="caveat-baseline-"))
    tree = tmp / "tree"
    try:
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(tree), sha],
            cwd=REPO, check=True, capture_output=True,
        )  # fmt: skip
        venv = tmp / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        python = venv / "bin" / "python"
        print(f"installing {rev} ({sha[:12]}) in {venv} …", file=sys.stderr)
        subprocess.run([str(python), "-m", "pip", "install", "-q", str(tree)], check=True, cwd=tmp)
        yield Side(f"{rev} ({sha[:12]})", tree, python)
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, capture_output=True
        )
        shutil.rmtree(tmp, ignore_errors=True)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the process tree, standard output) of a command."""
    before, start = _children_cpu(), time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env)
    wall, cpu = time.perf_counter() - start, _children_cpu() - before
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(command)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall, cpu, proc.stdout


def measure(side: Side, what: str, work: Path, cache: str) -> tuple[float, dict[str, int]]:
    """One figure of one probe on one side (scenarios or cases per CPU-second, or seconds), with
    the answer cache's hits and misses where the side has one. `cache` is "on" or "off" (the
    environment variable CAVEAT_ANSWER_CACHE; a revision without the cache ignores it)."""
    outside = work  # run from a directory of neither tree, so each imports its installed package
    env = {**os.environ, "CAVEAT_ANSWER_CACHE": "0" if cache == "off" else ""}
    counts: dict[str, int] = {}
    if what.startswith("evaluate"):
        which = "fixtures" if "fixture" in what else "generated"
        files = [str(work / f"{which}.json"), str(work / "warm.json")]
        _, _, out = _run([str(side.python), "-c", EVALUATE_PROBE, *files], outside, env)
        found = json.loads(out)
        counts = {k: found[k] for k in ("hits", "misses") if k in found}
        return found["n"] / found["cpu"], counts
    if what == "batch":
        lines = sum(1 for _ in (work / "cases.jsonl").open())
        command = [*side.caveat, "batch", str(work / "cases.jsonl"), "--workers", "1", "--quiet"]
        _, cpu, _ = _run([*command, "--out", str(work / f"out-{id(side)}.jsonl")], outside, env)
        return lines / cpu, counts
    if what == "cold start":
        wall, _, _ = _run([*side.caveat, "evaluate", str(work / "one.yaml")], outside, env)
        return wall, counts
    if what == "import engine":
        wall, _, _ = _run([str(side.python), "-c", "import engine"], outside, env)
        return wall, counts
    if what == "from engine import evaluate":
        wall, _, _ = _run([str(side.python), "-c", "from engine import evaluate"], outside, env)
        return wall, counts
    raise ValueError(what)


PROBES = {  # probe: (unit, higher is better)
    "evaluate, generated": ("scenarios per CPU-second", True),
    "evaluate, fixture cases": ("scenarios per CPU-second", True),
    "batch": ("cases per CPU-second", True),
    "cold start": ("seconds", False),
    "import engine": ("seconds", False),
    "from engine import evaluate": ("seconds", False),
}
CACHED = ("evaluate, generated", "evaluate, fixture cases", "batch")  # also with the cache on


def compare(
    base: Side,
    scenarios: list[Any],
    fixtures: list[Any],
    warm: list[Any],
    cases: list[dict[str, Any]],
    reps: int,
) -> dict[str, Any]:
    """Each probe on both sides, alternating, `reps` times; medians and the ratio of medians
    (working tree over baseline for rates, baseline over working tree for times: above 1 is
    faster). The working tree runs each probe of CACHED twice, with the answer cache off and on;
    the baseline, which has none, once."""
    head = working_tree()
    runs = [(probe, "off") for probe in PROBES] + [(probe, "on") for probe in CACHED]
    with tempfile.TemporaryDirectory(prefix="caveat-compare-") as tmp:
        work = Path(tmp)
        (work / "generated.json").write_text(json.dumps(scenarios))
        (work / "fixtures.json").write_text(json.dumps(fixtures))
        (work / "warm.json").write_text(json.dumps(warm))
        with (work / "cases.jsonl").open("w") as f:
            for case in cases:
                f.write(json.dumps(case) + "\n")
        (work / "one.yaml").write_text(ONE_CASE)
        figures: dict[tuple[str, str], dict[str, list[float]]] = {
            run: {"baseline": [], "working tree": []} for run in runs
        }
        counts: dict[tuple[str, str], dict[str, int]] = {}
        for rep in range(reps):
            order = (base, head) if rep % 2 == 0 else (head, base)
            for probe, cache in runs:
                for side in order:
                    if side is base and cache == "on":
                        continue  # (the baseline's figure is the one without a cache)
                    key = "baseline" if side is base else "working tree"
                    figure, seen = measure(side, probe, work, cache)
                    figures[(probe, cache)][key].append(figure)
                    if side is head and seen:
                        total = counts.setdefault((probe, cache), {"hits": 0, "misses": 0})
                        total["hits"] += seen["hits"]
                        total["misses"] += seen["misses"]
            print(f"  baseline comparison: repetition {rep + 1}/{reps}", file=sys.stderr)
    out: dict[str, Any] = {"baseline": base.name, "reps": reps, "probes": {}}
    for probe, cache in runs:
        unit, higher = PROBES[probe]
        base_runs = figures[(probe, "off")]["baseline"]
        b = statistics.median(base_runs)
        h = statistics.median(figures[(probe, cache)]["working tree"])
        name = f"{probe} (answer cache {cache})" if probe in CACHED else probe
        entry: dict[str, Any] = {
            "unit": unit,
            "baseline": b,
            "working_tree": h,
            "runs": {
                "baseline": base_runs,
                "working tree": figures[(probe, cache)]["working tree"],
            },
            "speedup": (h / b) if higher else (b / h),
        }
        seen = counts.get((probe, cache))
        if seen and seen["hits"] + seen["misses"]:
            entry["hit_rate"] = seen["hits"] / (seen["hits"] + seen["misses"])
        out["probes"][name] = entry
    out["pid"] = os.getpid()
    return out
