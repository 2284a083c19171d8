"""Caveat's benchmark: speed, scale, batch and memory, measured as ratios within one run.

    python bench/run.py            # the full run (a few minutes on 2 cores)
    python bench/run.py --quick    # smaller sizes, fewer repetitions: a smoke test

Writes bench/results/latest.json and prints a table. These machines are noisy: every figure is a
median over repetitions (with the spread), and every comparison is a ratio of figures measured in
the same run, interleaved.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from peers import bench_peers
from report import report
from rich.console import Console

from engine import KnowledgeBase, load_knowledge_base, synthetic
from engine.casefiles import read_cases
from engine.cases import split_case
from engine.compiler import Match
from engine.facts import normalise
from engine.knowledge_base import ANSWERS_BOUND
from engine.pipeline import run
from engine.scenario import parse_scenario
from engine.statements import build_result

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


class NoMatcher:
    """Matching skipped: what the rest of the pipeline costs on its own."""

    def match(self, facts: Any, include_background: bool) -> Match:
        return Match()


def pipeline(kb: KnowledgeBase, matcher: Any) -> Callable[[Any], Any]:
    """evaluate() with the matcher chosen; every other step is the library's own."""

    def run(scenario: Any) -> Any:
        facts = normalise(parse_scenario(scenario), kb.vocabulary)
        return build_result(kb, facts, matcher.match(facts, False), False)

    return run


def timed_pass(fn: Callable[[Any], Any], scenarios: list[Any]) -> tuple[float, list[int]]:
    """Throughput (per CPU-second) and per-call latencies (ns, wall) over one pass."""
    clock = time.perf_counter_ns
    latencies = []
    start = time.process_time()
    for scenario in scenarios:
        t = clock()
        fn(scenario)
        latencies.append(clock() - t)
    elapsed = time.process_time() - start
    return len(scenarios) / elapsed, latencies


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0  # microseconds


# 1 ------------------------------------------------------------------------------------------------
def fixture_scenarios() -> list[dict[str, Any]]:
    """The valid scenarios of the case library (fixtures/cases)."""
    fixtures = [
        split_case(e.data, e.name).scenario
        for e in read_cases([REPO / "fixtures" / "cases"])
        if e.error is None and isinstance(e.data, dict) and "resourceType" not in e.data
    ]
    return [s for s in fixtures if _valid(s)]


PATHS = (  # the ways evaluate() is measured: (name, what it runs)
    "fast, answer cache off",
    "fast, answer cache on",
    "plain (pydantic, no caches)",
    "reference evaluator",
    "none (pipeline only)",
)


def evaluator(kb: KnowledgeBase, path: str) -> Callable[[Any], Any]:
    if path == "plain (pydantic, no caches)":
        return lambda s: run(kb, s, plain=True)
    if path == "reference evaluator":
        return lambda s: run(kb, s, matcher="reference")
    if path == "none (pipeline only)":
        return pipeline(kb, NoMatcher())
    return lambda s: run(kb, s)


def same_results(kb: KnowledgeBase, scenarios: list[Any]) -> int:
    """How many scenarios the fast path answers differently from the plain path (must be 0)."""
    return sum(run(kb, s).model_dump() != run(kb, s, plain=True).model_dump() for s in scenarios)


def bench_evaluate(kb: KnowledgeBase, reps: int, n_generated: int) -> dict[str, Any]:
    fixtures = fixture_scenarios()
    rng = random.Random(2026)
    generated = [synthetic.scenario(rng, kb) for _ in range(n_generated)]
    out: dict[str, Any] = {}
    for label, scenarios in (("fixture cases", fixtures * 20), ("generated", generated)):
        rates: dict[str, list[float]] = {p: [] for p in PATHS}
        lat: dict[str, list[int]] = {p: [] for p in PATHS}
        hits: list[float] = []
        for path in PATHS:  # warm up (and read the ICD-10-CM index once)
            kb.matcher.set_answer_cache(0)
            for scenario in scenarios[:2000]:
                evaluator(kb, path)(scenario)
        for _ in range(reps):
            for path in PATHS:
                # a cache starts empty on each pass: its hits are those within one pass
                kb.matcher.set_answer_cache(ANSWERS_BOUND if path.endswith("cache on") else 0)
                rate, latencies = timed_pass(evaluator(kb, path), scenarios)
                rates[path].append(rate)
                lat[path] += latencies
                if path.endswith("cache on"):
                    hits.append(kb.matcher.hits / (kb.matcher.hits + kb.matcher.misses))
        kb.matcher.set_answer_cache(0)
        out[label] = {
            "scenarios": len(scenarios),
            "per_cpu_second": {p: summary(v) for p, v in rates.items()},
            "p50_us": {p: percentile(v, 0.50) for p, v in lat.items()},
            "p99_us": {p: percentile(v, 0.99) for p, v in lat.items()},
            "answer_cache_hit_rate": statistics.median(hits),
            "fast_vs_plain": summary(
                [f / p for f, p in zip(rates[PATHS[0]], rates[PATHS[2]], strict=True)]
            ),
            "differing_results": same_results(kb, scenarios),
        }
    kb.matcher.set_answer_cache(ANSWERS_BOUND)
    out["stages_us"] = stage_shares(kb, generated[: min(5000, len(generated))], reps)
    return out


def _valid(scenario: Any) -> bool:
    try:
        parse_scenario(scenario)
    except ValueError:
        return False
    return True


def stage_shares(kb: KnowledgeBase, scenarios: list[Any], reps: int) -> dict[str, float]:
    """Median time per scenario of each step, measured step by step."""
    results: dict[str, list[float]] = {}

    def step(name: str, fn: Callable[[Any], Any], inputs: list[Any]) -> list[Any]:
        start = time.perf_counter()
        outputs = [fn(x) for x in inputs]
        results.setdefault(name, []).append((time.perf_counter() - start) / len(inputs) * 1e6)
        return outputs

    for _ in range(reps):
        parsed = step("validate", parse_scenario, scenarios)
        facts = step("normalise", lambda s: normalise(s, kb.vocabulary), parsed)
        kb.matcher.set_answer_cache(0)
        matches = step("match: durable_rules", lambda f: kb.matcher.match(f, False), facts)
        step("match: reference", lambda f: kb.reference.match(f, False), facts)
        step(
            "build result",
            lambda fm: build_result(kb, fm[0], fm[1], False),
            list(zip(facts, matches, strict=True)),
        )
        del parsed, facts, matches
        gc.collect()
    return {name: statistics.median(v) for name, v in results.items()}


def peer_scenarios(kb: KnowledgeBase, n: int) -> list[Any]:
    """The generated scenarios of section 1, for the bare matchers (bench/peers.py)."""
    rng = random.Random(2026)
    return [synthetic.scenario(rng, kb) for _ in range(n)]


# 2 ------------------------------------------------------------------------------------------------
def bench_load(reps: int) -> dict[str, Any]:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        KnowledgeBase.load()
        times.append(time.perf_counter() - start)
    return {"seconds": summary(times)}


# 3 ------------------------------------------------------------------------------------------------
def bench_scale(sizes: list[int], reps: int, n_scenarios: int) -> dict[str, Any]:
    small = synthetic.pack(7, sizes[0])
    rng = random.Random(7)
    scenarios = [synthetic.scenario(rng, small) for _ in range(n_scenarios)]
    packs, compile_s = {}, {}
    for n in sizes:
        start = time.perf_counter()
        packs[n] = synthetic.pack(7, n, active=sizes[0])
        compile_s[n] = time.perf_counter() - start
        packs[n].matcher.set_answer_cache(0)  # (every evaluation matched by durable_rules)
    fired = {
        n: sum(
            len(
                kb.program.decode(
                    int(x)
                    for x in kb.matcher.rulesets.fire(
                        kb.program.encode(normalise(parse_scenario(s), kb.vocabulary), False)
                    )
                ).applies
            )
            for s in scenarios
        )
        / len(scenarios)
        for n, kb in packs.items()
    }
    cost: dict[int, list[float]] = {n: [] for n in sizes}
    ratio: list[float] = []
    for _ in range(reps):
        this = {}
        for n, kb in packs.items():
            rate, _ = timed_pass(pipeline(kb, kb.matcher), scenarios)
            this[n] = 1e6 / rate
            cost[n].append(this[n])
        ratio.append(this[sizes[-1]] / this[sizes[0]])
    return {
        "sizes": {
            str(n): {
                "rules": len(packs[n].rules),
                "rulesets": len(packs[n].program.rulesets),
                "compile_s": compile_s[n],
                "rules_applied_per_scenario": fired[n],
                "us_per_evaluation": summary(cost[n]),
            }
            for n in sizes
        },
        "largest_vs_smallest": summary(ratio),
    }


# 4 ------------------------------------------------------------------------------------------------
def _tree_rss_kb(pid: int) -> int:
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
            for task in os.listdir(f"/proc/{p}/task"):  # children of every thread
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (OSError, StopIteration):
            continue
    return total


def run_measured(command: list[str]) -> tuple[float, float, int]:
    """Wall time, CPU time (the process and its children, getrusage) and peak resident memory
    (KB, the process and its children) of a command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_kb(proc.pid))
        time.sleep(0.1)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{command} failed: {proc.stderr.read().decode()}")
    return elapsed, cpu, peak


def batch_command(cases: Path, out: Path, fmt: str, workers: int, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "engine", "batch", str(cases), "--workers", str(workers),
        "--quiet", "--format", fmt, "--out", str(out), *extra,
    ]  # fmt: skip


def bench_batch(kb: KnowledgeBase, n_cases: int, reps: int) -> dict[str, Any]:
    rng = random.Random(11)
    with tempfile.TemporaryDirectory() as tmp:
        cases = Path(tmp) / "cases.jsonl"
        with cases.open("w") as f:
            for i in range(n_cases):
                f.write(json.dumps({"id": f"g{i}", **synthetic.scenario(rng, kb)}) + "\n")
        out: dict[str, Any] = {}
        for fmt in ("jsonl", "json", "table"):
            seconds: dict[int, list[float]] = {1: [], 2: []}
            cpu: dict[int, list[float]] = {1: [], 2: []}
            peaks: dict[int, int] = {1: 0, 2: 0}
            speedups = []
            for _ in range(reps):
                this = {}
                for workers in (1, 2):
                    command = batch_command(cases, Path(tmp) / f"out.{fmt}", fmt, workers)
                    elapsed, used, peak = run_measured(command)
                    seconds[workers].append(elapsed)
                    cpu[workers].append(used)
                    peaks[workers] = max(peaks[workers], peak)
                    this[workers] = elapsed
                speedups.append(this[1] / this[2])
            out[fmt] = {
                "cases": n_cases,
                "cases_per_second": {
                    str(w): summary([n_cases / s for s in v]) for w, v in seconds.items()
                },
                "cases_per_cpu_second": {
                    str(w): summary([n_cases / c for c in v]) for w, v in cpu.items()
                },
                # CPU of the whole process tree per case, shared out over the workers
                "cpu_us_per_case_per_worker": {
                    str(w): summary([c / n_cases / w * 1e6 for c in v]) for w, v in cpu.items()
                },
                "peak_rss_mb": {str(w): p / 1024 for w, p in peaks.items()},
                "wall_speedup_2_vs_1": summary(speedups),
            }
        # the fast path's output, record for record, against the plain path's
        fast, plain = Path(tmp) / "fast.jsonl", Path(tmp) / "plain.jsonl"
        run_measured(batch_command(cases, fast, "jsonl", 1))
        run_measured(batch_command(cases, plain, "jsonl", 1, "--plain"))
        out["jsonl"]["identical_to_plain_path"] = fast.read_bytes() == plain.read_bytes()
    return out


# 5 ------------------------------------------------------------------------------------------------
MEMORY_SCRIPT = """
import json, random, sys
from engine import evaluate, load_knowledge_base, synthetic
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024
kb = load_knowledge_base()
rng = random.Random(3)
pool = [synthetic.scenario(rng, kb) for _ in range(2000)]
for s in pool:
    evaluate(s)
n = int(sys.argv[1]); marks = {}
start = rss()
for i in range(n):
    evaluate(pool[i % len(pool)], include_background=i % 5 == 0)
    if i % (n // 5) == 0:
        marks[i] = rss()
print(json.dumps({"start_mb": start, "end_mb": rss(), "marks": marks}))
"""


def bench_memory(n: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, str(n)], capture_output=True, text=True, check=True
    )
    data = json.loads(proc.stdout)
    data["evaluations"] = n
    data["growth_mb"] = data["end_mb"] - data["start_mb"]
    return data


# -- report ---------------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    versions = {}
    for package in ("durable-rules", "pydantic", "pydantic-core", "pyyaml", "simple-icd-10-cm"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
    }


def bench_baseline(kb: KnowledgeBase, rev: str, reps: int, quick: bool) -> dict[str, Any]:
    """The working tree against REV on the same scenarios and cases (bench/baseline.py)."""
    from baseline import baseline, compare

    rng = random.Random(2026)
    scenarios = [synthetic.scenario(rng, kb) for _ in range(2000 if quick else 20_000)]
    warm = [synthetic.scenario(random.Random(7), kb) for _ in range(200)]
    fixtures = fixture_scenarios() * (4 if quick else 20)
    cases = [{"id": f"g{i}", **s} for i, s in enumerate(scenarios)]
    cases = (cases * (1 + (5000 if quick else 100_000) // len(cases)))[: 5000 if quick else 100_000]
    with baseline(rev) as side:
        return compare(side, scenarios, fixtures, warm, cases, max(3, reps) if not quick else 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument("--reps", type=int, help="repetitions (default 5, quick 2)")
    parser.add_argument(
        "--out",
        help="where the JSON goes (default: bench/results/latest.json; with --quick, "
        "bench/results/quick.json, so that a smoke run never replaces the committed figures)",
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also build REV (a git revision) in a temporary worktree with its own virtual "
        "environment and measure it beside the working tree, alternating, in this run",
    )
    parser.add_argument(
        "--only-baseline",
        action="store_true",
        help="with --baseline: measure only the comparison, not the other sections",
    )
    args = parser.parse_args()
    if args.out is None:
        args.out = str(HERE / "results" / ("quick.json" if args.quick else "latest.json"))
    if args.only_baseline and not args.baseline:
        parser.error("--only-baseline needs --baseline REV")
    reps = args.reps or (2 if args.quick else 5)
    kb = load_knowledge_base()
    console = Console()
    results: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "reps": reps,
        "quick": args.quick,
        "machine": machine(),
    }
    steps = [
        ("evaluate", lambda: bench_evaluate(kb, reps, 2000 if args.quick else 20_000)),
        (
            "peers",
            lambda: bench_peers(kb, peer_scenarios(kb, 2000 if args.quick else 20_000), reps),
        ),
        ("load", lambda: bench_load(reps * 2)),
        ("scale", lambda: bench_scale([30, 300, 1000], reps, 500 if args.quick else 3000)),
        (
            "batch",
            lambda: bench_batch(
                kb, 5000 if args.quick else 100_000, 1 if args.quick else max(3, reps)
            ),
        ),
        ("memory", lambda: bench_memory(20_000 if args.quick else 500_000)),
    ]
    if args.baseline:
        steps = [("baseline", lambda: bench_baseline(kb, args.baseline, reps, args.quick))] + (
            [] if args.only_baseline else steps
        )
    for name, step in steps:
        console.print(f"[dim]running {name}…[/]")
        results[name] = step()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    report(results, console)
    console.print(f"[dim]written to {args.out}[/]")


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
