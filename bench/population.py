"""Benchmark of `caveat population`: peak memory against the population's size, throughput per
CPU-second with the share spent reading and grouping against evaluating, and Dask's overhead.

    python bench/population.py                  # 10,000, 100,000 and 1,000,000 patients
    python bench/population.py --sizes 10000 100000
    python bench/population.py --quick          # 2,000 and 20,000 patients: a smoke test

The large exports are made here, at benchmark time, from the 40 Synthea patients of
fixtures/fhir/bulk/synthea-40, each copied with new ids (the patient's and its resources') until
the size is reached. A copy keeps each patient's Patient resource, its Conditions and
MedicationRequests (8 and 4 of them, the subject drug's and the active ones first) and
2 Observations and 1 Encounter (which the push-down drops), so that a million patients fit on a
disk (about 12 KB a patient) and in the run's time. Files are plain NDJSON (gzip would measure
zlib). The figures go to bench/results/population.json (with --quick, population-quick.json).

Every command runs as a separate process tree; CPU is getrusage over the tree (the machine is
noisy: wall-clock is kept for the record), peak memory the largest sum of the tree's resident
sets, sampled every 0.1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from run import run_measured  # noqa: E402

SOURCE = REPO / "fixtures" / "fhir" / "bulk" / "synthea-40"
KEEP = {"Condition": 8, "MedicationRequest": 4, "Observation": 2, "Encounter": 1}
SUBJECT = ("clonazepam",)


def _lines(path: Path) -> list[bytes]:
    import gzip

    opener: Any = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as f:
        return [line for line in f if line.strip()]


def templates() -> list[dict[str, list[bytes]]]:
    """Each source patient's lean record, by resource type, with `@@` where its ids go."""
    manifest = json.loads((SOURCE / "manifest.json").read_text())
    by_patient: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for out in manifest["output"]:
        if out["type"] not in (*KEEP, "Patient"):
            continue
        for line in _lines(SOURCE / out["url"]):
            r = orjson.loads(line)
            pid = r["id"] if r["resourceType"] == "Patient" else r["subject"]["reference"][8:]
            by_patient.setdefault(pid, {}).setdefault(r["resourceType"], []).append(r)
    out_list = []
    for pid, types in sorted(by_patient.items()):
        record: dict[str, list[bytes]] = {}
        for rtype, items in types.items():
            limit = KEEP.get(rtype, 1)
            items.sort(key=lambda r: (not _subject(r), not _active(r), r["id"]))
            record[rtype] = [
                orjson.dumps(r)
                .replace(pid.encode(), b"@@")
                .replace(f'"id":"{r["id"]}"'.encode(), f'"id":"{r["id"]}-@@"'.encode())
                + b"\n"
                for r in items[:limit]
            ]
        out_list.append(record)
    return out_list


def _subject(r: dict[str, Any]) -> bool:
    return any(s in json.dumps(r.get("medicationCodeableConcept", "")).lower() for s in SUBJECT)


def _active(r: dict[str, Any]) -> bool:
    status = r.get("status") or (r.get("clinicalStatus") or {}).get("coding", [{}])[0].get("code")
    return status == "active"


def make_export(n: int, root: Path) -> dict[str, int]:
    """An export of `n` patients, copies of the templates with new ids."""
    root.mkdir(parents=True, exist_ok=True)
    records = templates()
    types = ["Patient", *KEEP]
    files = {t: open(root / f"{t}.ndjson", "wb") for t in types}  # noqa: SIM115
    counts = dict.fromkeys(types, 0)
    try:
        for i in range(n):
            record = records[i % len(records)]
            new = f"p{i:08d}-{i % len(records):02d}".encode()
            for rtype in types:
                lines = record.get(rtype, [])
                if lines:
                    files[rtype].write(b"".join(lines).replace(b"@@", new))
                    counts[rtype] += len(lines)
    finally:
        for f in files.values():
            f.close()
    source = json.loads((SOURCE / "manifest.json").read_text())
    manifest = {
        "transactionTime": source["transactionTime"],
        "request": "https://example.org/fhir/$export",
        "requiresAccessToken": False,
        "output": [{"type": t, "url": f"{t}.ndjson", "count": counts[t]} for t in types],
        "error": [],
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return counts


def measure(root: Path, work: Path, *extra: str) -> dict[str, Any]:
    out = work / "rows.jsonl"
    summary = work / "summary.json"
    command = [
        sys.executable, "-m", "engine", "population", str(root), "--out", str(out),
        "--summary", str(summary), "--quiet", "--spill-dir", str(work), *extra,
    ]  # fmt: skip
    wall, cpu, peak = run_measured(command)
    s = json.loads(summary.read_text())
    with open(out, "rb") as f:
        rows = sum(1 for _ in f)
    out.unlink()
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "peak_rss_mb": round(peak / 1024, 1),
        "patients": s["patients"],
        "patients_evaluated": s["patients_evaluated"],
        "rows": rows,
        "resources_read": s["reading"]["resources_read"],
        "resources_kept": s["reading"]["resources_kept"],
        "partitions": s["partitions"],
        "patients_per_cpu_s": round(s["patients"] / cpu, 1),
        "resources_per_cpu_s": round(s["reading"]["resources_read"] / cpu, 1),
        "seconds": s["seconds"],
    }


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", help="patients per export")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dask-size", type=int, help="patients for the Dask comparison")
    parser.add_argument("--out", help="where the JSON goes")
    parser.add_argument("--scratch", help="folder for the exports (default: the temporary one)")
    args = parser.parse_args()
    sizes = args.sizes or ([2_000, 20_000] if args.quick else [10_000, 100_000, 1_000_000])
    dask_size = args.dask_size or (2_000 if args.quick else 10_000)
    target = Path(
        args.out
        or HERE / "results" / ("population-quick.json" if args.quick else "population.json")
    )
    results: dict[str, Any] = {
        "machine": machine(),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "workers": args.workers,
        "sizes": {},
    }
    scratch = Path(tempfile.mkdtemp(prefix="caveat-bench-population-", dir=args.scratch))
    try:
        for n in sizes:
            root = scratch / f"export-{n}"
            start = time.perf_counter()
            counts = make_export(n, root)
            made = time.perf_counter() - start
            size = sum(p.stat().st_size for p in root.iterdir())
            work = scratch / f"work-{n}"
            work.mkdir()
            got = measure(root, work, "--workers", str(args.workers))
            got.update(export_mb=round(size / 1e6, 1), made_in_s=round(made, 1), lines=counts)
            results["sizes"][str(n)] = got
            print(f"{n:>9,} patients: {json.dumps(got)}", flush=True)
            if n != sizes[-1]:
                shutil.rmtree(root)
            shutil.rmtree(work)
        root = scratch / "export-dask"
        make_export(dask_size, root)
        work = scratch / "work-dask"
        work.mkdir()
        local = measure(root, work, "--workers", str(args.workers))
        dasked = measure(root, work, "--dask", "local")
        results["dask"] = {
            "patients": dask_size,
            "local": local,
            "dask_local_cluster": dasked,
            "wall_ratio": round(dasked["wall_s"] / local["wall_s"], 2),
        }
        print(f"dask at {dask_size:,}: {json.dumps(results['dask'])}", flush=True)
        peaks = [v["peak_rss_mb"] for v in results["sizes"].values()]
        results["peak_rss_spread_mb"] = round(max(peaks) - min(peaks), 1)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
