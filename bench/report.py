"""The benchmark's figures as tables in the terminal (bench/run.py measures them)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def fmt(s: dict[str, float], unit: str = "", digits: int = 0) -> str:
    return f"{s['median']:,.{digits}f}{unit} ({s['min']:,.{digits}f}–{s['max']:,.{digits}f})"


def report_baseline(found: dict[str, Any], console: Console) -> None:
    table = Table(title=f"against {found['baseline']} (medians of {found['reps']}, alternating)")
    for column in ("probe", "unit", "baseline", "working tree", "speed-up", "cache hits"):
        table.add_column(column, justify="right" if column != "probe" else "left")
    for probe, f in found["probes"].items():
        digits = 3 if f["unit"] == "seconds" else 0
        table.add_row(
            probe,
            f["unit"],
            f"{f['baseline']:,.{digits}f}",
            f"{f['working_tree']:,.{digits}f}",
            f"{f['speedup']:.2f}x",
            f"{f['hit_rate']:.1%}" if "hit_rate" in f else "",
        )
    console.print(table)


def report_evaluate(ev: dict[str, Any], console: Console) -> None:
    t = Table(title="1. evaluate() on the bundled pack (per CPU-second)", title_justify="left")
    for c in ("scenarios", "path", "per CPU-second", "p50 µs", "p99 µs"):
        t.add_column(c)
    for label in ("fixture cases", "generated"):
        row = ev[label]
        for path, rate in row["per_cpu_second"].items():
            t.add_row(
                f"{label} ({row['scenarios']:,})",
                path,
                fmt(rate),
                f"{row['p50_us'][path]:.0f}",
                f"{row['p99_us'][path]:.0f}",
            )
        t.add_row("", "[bold]fast / plain", fmt(row["fast_vs_plain"], "x", 2), "", "")
        t.add_row(
            "",
            f"answer cache hits {row['answer_cache_hit_rate']:.1%}; results differing from "
            f"the plain path: {row['differing_results']}",
            "",
            "",
            "",
        )
    console.print(t)
    t = Table(title="   steps (µs per scenario, generated)", title_justify="left")
    t.add_column("step")
    t.add_column("µs", justify="right")
    for step, us in ev["stages_us"].items():
        t.add_row(step, f"{us:.1f}")
    console.print(t)


def report_peers(peers: dict[str, Any], console: Console) -> None:
    t = Table(
        title=f"   bare matchers on the same {peers['facts']:,} normalised facts "
        f"({peers['disjuncts']} compiled alternatives)",
        title_justify="left",
    )
    t.add_column("matcher")
    t.add_column("facts per CPU-second", justify="right")
    for name in ("durable_rules alone", "zen-engine expressions", "plain-Python floor"):
        found = peers.get(name)
        shown = f"{found['facts_per_cpu_second']:,.0f}" if isinstance(found, dict) else str(found)
        t.add_row(name, shown)
    console.print(t)


def report(results: dict[str, Any], console: Console) -> None:
    if "baseline" in results:
        report_baseline(results["baseline"], console)
    if "evaluate" not in results:
        return
    m = results["machine"]
    console.print(
        f"[bold]Caveat benchmark[/] {results['when']} — {m['cores']} cores, Python "
        f"{m['python']}, durable-rules {m['packages']['durable-rules']}, "
        f"{results['reps']} repetitions (median, min–max)"
    )
    report_evaluate(results["evaluate"], console)
    if "peers" in results:
        report_peers(results["peers"], console)
    console.print(
        f"2. load and compile the bundled pack: {fmt(results['load']['seconds'], ' s', 3)}"
    )
    sc = results["scale"]
    t = Table(title="3. scale: generated packs, the same rules firing", title_justify="left")
    for c in ("rules", "rulesets", "compile s", "rules applied", "µs / evaluation"):
        t.add_column(c)
    for n, row in sc["sizes"].items():
        t.add_row(
            n,
            str(row["rulesets"]),
            f"{row['compile_s']:.2f}",
            f"{row['rules_applied_per_scenario']:.2f}",
            fmt(row["us_per_evaluation"], digits=1),
        )
    t.add_row("[bold]largest / smallest", "", "", "", fmt(sc["largest_vs_smallest"], "x", 2))
    console.print(t)
    t = Table(title="4. caveat batch", title_justify="left")
    for c in (
        "format",
        "cases",
        "1 worker /CPU-s",
        "CPU µs/case/worker (1 / 2)",
        "wall /s (1 / 2)",
        "wall speed-up",
        "peak RSS MB (1 / 2)",
    ):
        t.add_column(c)
    for f, row in results["batch"].items():
        per = row["cpu_us_per_case_per_worker"]
        wall = row["cases_per_second"]
        t.add_row(
            f,
            f"{row['cases']:,}",
            fmt(row["cases_per_cpu_second"]["1"]),
            f"{per['1']['median']:.1f} / {per['2']['median']:.1f}",
            f"{wall['1']['median']:,.0f} / {wall['2']['median']:,.0f}",
            fmt(row["wall_speedup_2_vs_1"], "x", 2),
            f"{row['peak_rss_mb']['1']:.0f} / {row['peak_rss_mb']['2']:.0f}",
        )
    console.print(t)
    if "identical_to_plain_path" in results["batch"].get("jsonl", {}):
        same = results["batch"]["jsonl"]["identical_to_plain_path"]
        console.print(f"   jsonl output identical to `--plain`'s: {same}")
    mem = results["memory"]
    console.print(
        f"5. memory over {mem['evaluations']:,} evaluate() calls: {mem['start_mb']:.1f} MB "
        f"→ {mem['end_mb']:.1f} MB (growth {mem['growth_mb']:+.1f} MB)"
    )
