"""The CDS Hooks service under load: latency, throughput, CPU per request and memory, over HTTP.

    python bench/service.py            # the full run (about 15-25 minutes on 2 cores)
    python bench/service.py --quick    # fewer requests: a smoke test (about a minute)

Starts `caveat serve` in a process of its own on a free loopback port and calls it with httpx,
each client on its own keep-alive connection. The request is an order-select call for a draft
clonazepam order (RxNorm 197527) whose prefetch holds 200 FHIR resources: a Patient, 120
Conditions (a few the pack recognises, most unrelated SNOMED CT codes) and 79 MedicationRequests
of assorted RxNorm codes, built from a fixed seed.

1. latency: one client, one request at a time, after a warm-up;
2. throughput and latency with 1, 8 and 32 concurrent clients, each level repeated (interleaved)
   and reported as the median of the repetitions, with the server's CPU-seconds per request (from
   /proc/<pid>/stat) because wall-clock figures on a shared 2-core machine are noisy, and the
   client shares those cores;
3. memory: the server's resident memory before and after many requests whose patient ids,
   hookInstances and unrelated condition codes and texts are never seen before, so that no cache
   can hide growth.

Writes bench/results/service.json and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import orjson
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
AS_OF = "2026-11-25"
SERVICE = "clonazepam-order-select"
TICK = os.sysconf("SC_CLK_TCK")

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"

# Conditions the pack recognises (rules/concepts.yaml) ...
KNOWN_CONDITIONS = [
    ("371631005", "Panic disorder"),
    ("84757009", "Epilepsy"),
    ("21897009", "Generalized anxiety disorder"),
]
# ... and common ones it has nothing to say about (SNOMED CT; the displays are for reading only).
UNRELATED_CONDITIONS = [
    ("38341003", "Hypertensive disorder"),
    ("44054006", "Diabetes mellitus type 2"),
    ("55822004", "Hyperlipidemia"),
    ("195967001", "Asthma"),
    ("13645005", "Chronic obstructive lung disease"),
    ("40055000", "Chronic sinusitis"),
    ("162864005", "Body mass index 30+ - obesity"),
    ("271737000", "Anemia"),
    ("233604007", "Pneumonia"),
    ("444814009", "Viral sinusitis"),
    ("10509002", "Acute bronchitis"),
    ("68496003", "Polyp of colon"),
    ("431855005", "Chronic kidney disease stage 1"),
    ("239873007", "Osteoarthritis of knee"),
    ("64859006", "Osteoporosis"),
    ("59621000", "Essential hypertension"),
    ("49436004", "Atrial fibrillation"),
    ("53741008", "Coronary arteriosclerosis"),
    ("87433001", "Pulmonary emphysema"),
    ("302870006", "Hypertriglyceridemia"),
]
# Medications: a few the pack recognises (a benzodiazepine product, an anticonvulsant ingredient)
# and assorted products it does not (RxNorm; displays for reading only).
KNOWN_MEDICATIONS = [
    ("104700", "diazepam 5 MG Oral Tablet [Valium]"),
    ("8183", "phenytoin"),
]
UNRELATED_MEDICATIONS = [
    ("860975", "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet"),
    ("314076", "lisinopril 10 MG Oral Tablet"),
    ("197361", "amlodipine 5 MG Oral Tablet"),
    ("617314", "atorvastatin 10 MG Oral Tablet"),
    ("310965", "ibuprofen 200 MG Oral Tablet"),
    ("313782", "acetaminophen 325 MG Oral Tablet"),
    ("198211", "simvastatin 40 MG Oral Tablet"),
    ("311989", "nitrofurantoin 100 MG Oral Capsule"),
    ("308136", "amoxicillin 500 MG Oral Capsule"),
    ("849574", "naproxen sodium 220 MG Oral Tablet"),
    ("834060", "penicillin V potassium 250 MG Oral Tablet"),
    ("866924", "metoprolol tartrate 25 MG Oral Tablet"),
    ("310798", "hydrochlorothiazide 25 MG Oral Tablet"),
    ("1049621", "oxycodone hydrochloride 5 MG Oral Tablet"),
    ("745679", "200 ACTUAT albuterol 0.09 MG/ACTUAT Metered Dose Inhaler"),
    ("312961", "simvastatin 20 MG Oral Tablet"),
    ("197884", "lisinopril 40 MG Oral Tablet"),
    ("311670", "metformin hydrochloride 500 MG Oral Tablet"),
    ("205923", "levothyroxine sodium 0.05 MG Oral Tablet [Synthroid]"),
    ("312617", "prednisone 5 MG Oral Tablet"),
]

N_CONDITIONS = 120
N_MEDICATIONS = 79  # with the Patient: 200 resources in the prefetch


# -- the request -----------------------------------------------------------------------------------
def _condition(i: int, pid: str, code: str, display: str, status: str = "active") -> dict:
    return {
        "fullUrl": f"Condition/c{i}",
        "resource": {
            "resourceType": "Condition",
            "id": f"c{i}",
            "clinicalStatus": {"coding": [{"system": CLINICAL, "code": status}]},
            "verificationStatus": {"coding": [{"system": VERIFICATION, "code": "confirmed"}]},
            "category": [{"coding": [{"system": CATEGORY, "code": "problem-list-item"}]}],
            "code": {
                "coding": [{"system": SNOMED, "code": code, "display": display}],
                "text": display,
            },
            "subject": {"reference": f"Patient/{pid}"},
            "onsetDateTime": f"{2000 + i % 25}-{1 + i % 12:02d}-{1 + i % 28:02d}",
        },
    }


def _medication(i: int, pid: str, code: str, display: str, status: str, authored: str) -> dict:
    return {
        "fullUrl": f"MedicationRequest/m{i}",
        "resource": {
            "resourceType": "MedicationRequest",
            "id": f"m{i}",
            "status": status,
            "intent": "order",
            "medicationCodeableConcept": {
                "coding": [{"system": RXNORM, "code": code, "display": display}],
                "text": display,
            },
            "subject": {"reference": f"Patient/{pid}"},
            "authoredOn": authored,
            "dosageInstruction": [{"text": "as directed"}],
        },
    }


def _draft(pid: str) -> dict:
    return {
        "resourceType": "MedicationRequest",
        "id": "draft-1",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [
                {"system": RXNORM, "code": "197527", "display": "clonazepam 0.5 MG Oral Tablet"}
            ],
            "text": "clonazepam 0.5 MG Oral Tablet",
        },
        "subject": {"reference": f"Patient/{pid}"},
        "authoredOn": AS_OF,
        "courseOfTherapyType": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy",
                    "code": "continuous",
                }
            ]
        },
        "dispenseRequest": {
            "numberOfRepeatsAllowed": 2,
            "expectedSupplyDuration": {
                "value": 30,
                "unit": "days",
                "system": "http://unitsofmeasure.org",
                "code": "d",
            },
        },
    }


def _bundle(entries: list[dict]) -> dict:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _uuid(rng: random.Random) -> str:
    h = _hex(rng, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def build_request(seed: int = 2026) -> dict[str, Any]:
    """The benchmark's order-select call: deterministic for a seed."""
    rng = random.Random(seed)
    pid = "bench-patient-1"
    conditions = []
    known_at = set(rng.sample(range(N_CONDITIONS), len(KNOWN_CONDITIONS)))
    known = iter(KNOWN_CONDITIONS)
    for i in range(N_CONDITIONS):
        if i in known_at:
            code, display = next(known)
        elif i < len(UNRELATED_CONDITIONS) + len(KNOWN_CONDITIONS):
            code, display = rng.choice(UNRELATED_CONDITIONS)
        else:  # SNOMED-shaped identifiers the pack does not know (checked in main)
            code = str(rng.randrange(10**8, 10**9))
            display = f"finding {code}"
        status = "recurrence" if i % 17 == 0 else "active"
        conditions.append(_condition(i, pid, code, display, status))
    medications = []
    for i in range(N_MEDICATIONS):
        if i < len(KNOWN_MEDICATIONS):
            code, display = KNOWN_MEDICATIONS[i]
        else:
            code, display = rng.choice(UNRELATED_MEDICATIONS)
        status = "on-hold" if i % 9 == 0 else "active"
        authored = (
            f"20{rng.randrange(15, 27)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
        )
        medications.append(_medication(i, pid, code, display, status, authored))
    rng.shuffle(medications)
    return {
        "hookInstance": _uuid(rng),
        "hook": "order-select",
        "context": {
            "userId": "Practitioner/bench",
            "patientId": pid,
            "draftOrders": {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"fullUrl": "MedicationRequest/draft-1", "resource": _draft(pid)}],
            },
            "selections": ["MedicationRequest/draft-1"],
        },
        "prefetch": {
            "patient": {
                "resourceType": "Patient",
                "id": pid,
                "active": True,
                "gender": "female",
                "birthDate": "1981-03-14",
            },
            "conditions": _bundle(conditions),
            "medicationRequests": _bundle(medications),
            "medicationStatements": _bundle([]),
        },
    }


def resource_count(request: dict[str, Any]) -> int:
    pre = request["prefetch"]
    return 1 + sum(len(pre[k]["entry"]) for k in ("conditions", "medicationRequests"))


class Fresh:
    """Variants of the benchmark request in which the patient id, the hookInstance, and every
    unrelated condition's code and text are strings never sent before. One dict is rewritten in
    place before each is serialised (cheap: the client shares the server's two cores)."""

    def __init__(self, seed: int = 99) -> None:
        self.rng = random.Random(seed)
        self.request = build_request()
        known = {c for c, _ in KNOWN_CONDITIONS}
        self.slots = [
            e["resource"]
            for e in self.request["prefetch"]["conditions"]["entry"]
            if e["resource"]["code"]["coding"][0]["code"] not in known
        ]
        self.n = 0

    def body(self) -> bytes:
        rng, req = self.rng, self.request
        self.n += 1
        tag = f"{self.n:x}{_hex(rng, 6)}"
        pid = f"p{tag}"
        req["hookInstance"] = _uuid(rng)
        req["context"]["patientId"] = pid
        req["prefetch"]["patient"]["id"] = pid
        ref = {"reference": f"Patient/{pid}"}
        req["context"]["draftOrders"]["entry"][0]["resource"]["subject"] = ref
        for e in req["prefetch"]["medicationRequests"]["entry"]:
            e["resource"]["subject"] = ref
        for k, res in enumerate(self.slots):
            # SNOMED-shaped, 11-18 digits: never a code of the pack's, never sent before
            code = f"9{self.n}{k:03d}{rng.randrange(10**3):03d}"
            words = f"{_word(rng)} {_word(rng)} {tag}"
            res["code"] = {"coding": [{"system": SNOMED, "code": code, "display": words}],
                           "text": words}  # fmt: skip
            res["subject"] = ref
        return orjson.dumps(req)


def _word(rng: random.Random) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(4, 10)))


# -- the server ------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(tmp: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """`caveat serve` on a free loopback port until the block ends: (base url, process)."""
    port = free_port()
    command = [
        sys.executable, "-m", "engine", "serve", "--port", str(port), "--as-of", AS_OF,
        "--feedback-log", str(tmp / "feedback.jsonl"), "--log-level", "warning",
    ]  # fmt: skip
    log = tmp / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"caveat serve exited {process.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > end:
                raise RuntimeError(f"caveat serve did not become ready:\n{log.read_text()}")
            time.sleep(0.1)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime: fields 14 and 15


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


# -- measuring -------------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def check(response: httpx.Response) -> int:
    """The number of cards; anything but a 200 with cards is a failure of the run."""
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:500]}")
    cards = orjson.loads(response.content)["cards"]
    if not cards:
        raise RuntimeError("the benchmark request got no cards")
    return len(cards)


HEADERS = {"Content-Type": "application/json"}


def sequential(url: str, body: bytes, n: int) -> dict[str, Any]:
    """One client, one request at a time: latency in ms."""
    times = []
    with httpx.Client(base_url=url, timeout=60, headers=HEADERS) as client:
        for _ in range(n):
            t = time.perf_counter()
            r = client.post(f"/cds-services/{SERVICE}", content=body)
            times.append((time.perf_counter() - t) * 1000)
            if r.status_code != 200:
                raise RuntimeError(f"HTTP {r.status_code}: {r.text[:500]}")
    return {
        "requests": n,
        "p50_ms": pct(times, 0.50),
        "p99_ms": pct(times, 0.99),
        "mean_ms": statistics.fmean(times),
        "max_ms": max(times),
    }


async def _concurrent(
    url: str, pid: int, bodies: Any, clients: int, n: int
) -> tuple[float, list[float], float, float]:
    """`n` requests from `clients` clients, each on its own keep-alive connection: (wall s,
    latencies ms, server CPU s, client CPU s), measured once every connection is open.
    `bodies` is a callable giving each request's body."""
    remaining = n
    times: list[float] = []
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    pool = [
        httpx.AsyncClient(base_url=url, timeout=120, limits=limits, headers=HEADERS)
        for _ in range(clients)
    ]
    for c in pool:  # open each connection before the clock starts
        (await c.get("/healthz")).raise_for_status()

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            body = bodies()
            t = time.perf_counter()
            r = await client.post(f"/cds-services/{SERVICE}", content=body)
            times.append((time.perf_counter() - t) * 1000)
            if r.status_code != 200:
                raise RuntimeError(f"HTTP {r.status_code}: {r.text[:500]}")

    server, mine, start = cpu_seconds(pid), time.process_time(), time.perf_counter()
    try:
        await asyncio.gather(*(worker(c) for c in pool))
        wall = time.perf_counter() - start
        server, mine = cpu_seconds(pid) - server, time.process_time() - mine
    finally:
        for c in pool:
            await c.aclose()
    return wall, times, server, mine


def concurrent(url: str, pid: int, body: bytes, clients: int, n: int) -> dict[str, Any]:
    wall, times, cpu, mine = asyncio.run(_concurrent(url, pid, lambda: body, clients, n))
    return {
        "requests": n,
        "per_second": n / wall,
        "p50_ms": pct(times, 0.50),
        "p99_ms": pct(times, 0.99),
        "mean_ms": statistics.fmean(times),
        "server_cpu_ms_per_request": cpu / n * 1000,
        "client_cpu_ms_per_request": mine / n * 1000,
        "server_cpu_share": cpu / wall,  # of one core
    }


SUMMARISED = (
    "per_second",
    "p50_ms",
    "p99_ms",
    "mean_ms",
    "server_cpu_ms_per_request",
    "client_cpu_ms_per_request",
    "server_cpu_share",
)


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def memory(
    url: str, pid: int, n: int, clients: int, budget_s: float | None, console: Console
) -> dict[str, Any]:
    """RSS after a warm-up of fresh requests, then through `n` more, all never seen before
    (stopping early, at a mark, once `budget_s` seconds have passed)."""
    fresh = Fresh()
    with httpx.Client(base_url=url, timeout=60, headers=HEADERS) as client:
        check(client.post(f"/cds-services/{SERVICE}", content=fresh.body()))
    warm = max(1000, n // 50)
    asyncio.run(_concurrent(url, pid, fresh.body, clients, warm))
    start = rss_mb(pid)
    marks = {0: start}
    step = max(1, n // 20)
    cpu = cpu_seconds(pid)
    t0 = time.perf_counter()
    done = 0
    while done < n:
        this = min(step, n - done)
        asyncio.run(_concurrent(url, pid, fresh.body, clients, this))
        done += this
        marks[done] = rss_mb(pid)
        elapsed = time.perf_counter() - t0
        console.print(
            f"[dim]  memory: {done:,} / {n:,} fresh requests, RSS {marks[done]:.1f} MB "
            f"({elapsed:.0f} s)[/]"
        )
        if budget_s is not None and elapsed > budget_s and done < n:
            console.print(f"[yellow]  memory: stopped at {done:,}: over {budget_s:.0f} s[/]")
            break
    elapsed = time.perf_counter() - t0
    cpu = cpu_seconds(pid) - cpu
    return {
        "warmup_requests": warm,
        "requests_planned": n,
        "requests": done,
        "stopped_early": done < n,
        "clients": clients,
        "seconds": elapsed,
        "per_second": done / elapsed,
        "server_cpu_ms_per_request": cpu / done * 1000,
        "rss_after_warmup_mb": start,
        "rss_end_mb": marks[done],
        "growth_mb": marks[done] - start,
        "marks_mb": {str(k): v for k, v in marks.items()},
    }


# -- report ----------------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=REPO, capture_output=True, text=True,
            ).stdout.strip()
        )  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        rev, dirty = None, None
    versions = {}
    for package in (
        "fastapi", "starlette", "uvicorn", "h11", "httptools", "httpx", "orjson", "pydantic"
    ):  # fmt: skip
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_count": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_revision": rev,
        "git_worktree_modified": dirty,
        "packages": versions,
    }


def fmt(s: dict[str, float], digits: int = 1) -> str:
    return f"{s['median']:,.{digits}f} ({s['min']:,.{digits}f}–{s['max']:,.{digits}f})"


def report(results: dict[str, Any], console: Console) -> None:
    m = results["machine"]
    rq = results["request"]
    console.print(
        f"[bold]Caveat CDS Hooks service benchmark[/] {results['when']} — {m['cores']} cores, "
        f"Python {m['python']}, uvicorn {m['packages']['uvicorn']} "
        f"({'httptools' if m['packages'].get('httptools') else 'h11'}), "
        f"rev {str(m['git_revision'])[:12]}; load average "
        f"{results['load_average_start'][0]:.1f} at the start, "
        f"{results['load_average_end'][0]:.1f} at the end"
    )
    console.print(
        f"request: order-select, {rq['resources']} prefetch resources, {rq['bytes']:,} bytes, "
        f"{rq['cards']} cards in the answer ({rq['answer_bytes']:,} bytes)"
    )
    s = results["sequential"]
    console.print(
        f"1. sequential, {s['requests']:,} requests: p50 {s['p50_ms']:.2f} ms, "
        f"p99 {s['p99_ms']:.2f} ms, mean {s['mean_ms']:.2f} ms, max {s['max_ms']:.1f} ms"
    )
    t = Table(
        title=f"2. concurrent clients ({results['reps']} repetitions: median, min–max)",
        title_justify="left",
    )
    for c in (
        "clients", "requests", "requests/s", "p50 ms", "p99 ms", "server CPU ms/req",
        "client CPU ms/req",
    ):  # fmt: skip
        t.add_column(c, justify="right")
    for level, row in results["concurrency"].items():
        t.add_row(
            level,
            f"{row['requests']:,}",
            fmt(row["per_second"], 0),
            fmt(row["p50_ms"]),
            fmt(row["p99_ms"]),
            fmt(row["server_cpu_ms_per_request"], 2),
            f"{row['client_cpu_ms_per_request']['median']:.2f}",
        )
    console.print(t)
    mem = results["memory"]
    console.print(
        f"3. memory: RSS {results['rss_idle_mb']:.1f} MB idle, "
        f"{results['rss_after_warmup_mb']:.1f} MB after warm-up; "
        f"over {mem['requests']:,} never-seen requests ({mem['clients']} clients, "
        f"{mem['seconds']:.0f} s, {mem['server_cpu_ms_per_request']:.1f} ms server CPU each"
        f"{', stopped early' if mem['stopped_early'] else ''}): "
        f"{mem['rss_after_warmup_mb']:.1f} → {mem['rss_end_mb']:.1f} MB "
        f"(growth {mem['growth_mb']:+.1f} MB)"
    )
    console.print(
        "   marks: " + ", ".join(f"{int(k):,}: {v:.1f}" for k, v in mem["marks_mb"].items())
    )
    target = results["target"]
    console.print(
        f"target: p99 < 50 ms with 8 clients — median p99 {target['p99_ms_8_clients']:.1f} ms: "
        f"{'met' if target['met'] else 'NOT met'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests: a smoke test")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each level (3)")
    parser.add_argument("--requests", type=int, help="requests per level (2,000; quick 200)")
    parser.add_argument(
        "--memory-requests", type=int, help="never-seen requests (100,000; quick 5,000)"
    )
    parser.add_argument(
        "--memory-minutes", type=float, default=None,
        help="stop the memory run at the next mark after this long (full run: 15)",
    )  # fmt: skip
    parser.add_argument("--out", default=str(HERE / "results" / "service.json"))
    args = parser.parse_args()
    per_level = args.requests or (200 if args.quick else 2000)
    n_memory = args.memory_requests or (5000 if args.quick else 100_000)
    if args.memory_minutes is None and not args.quick and args.memory_requests is None:
        args.memory_minutes = 15.0
    console = Console(width=None if sys.stdout.isatty() else 132)

    sys.path.insert(0, str(REPO))
    from engine import load_knowledge_base

    request = build_request()
    vocab = load_knowledge_base().vocabulary
    pack_codes = {c for c, _ in KNOWN_CONDITIONS}
    for e in request["prefetch"]["conditions"]["entry"]:
        code = e["resource"]["code"]["coding"][0]["code"]
        if code not in pack_codes and vocab.lookup_code("SNOMED-CT", code):
            raise SystemExit(f"an 'unrelated' condition code {code} is one the pack knows")
    body = orjson.dumps(request)

    results: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "quick": args.quick,
        "reps": args.reps,
        "machine": machine(),
        "load_average_start": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory() as tmp, serve(Path(tmp)) as (url, proc):
        pid = proc.pid
        results["rss_idle_mb"] = rss_mb(pid)
        with httpx.Client(base_url=url, timeout=60, headers=HEADERS) as client:
            first = client.post(f"/cds-services/{SERVICE}", content=body)
            n_cards = check(first)
            for _ in range(49 if args.quick else 299):  # warm-up
                client.post(f"/cds-services/{SERVICE}", content=body).raise_for_status()
        results["request"] = {
            "hook": "order-select",
            "service": SERVICE,
            "resources": resource_count(request),
            "conditions": N_CONDITIONS,
            "medication_requests": N_MEDICATIONS,
            "bytes": len(body),
            "cards": n_cards,
            "indicators": [c["indicator"] for c in orjson.loads(first.content)["cards"]],
            "answer_bytes": len(first.content),
        }
        results["rss_after_warmup_mb"] = rss_mb(pid)
        console.print("[dim]running sequential…[/]")
        results["sequential"] = sequential(url, body, per_level)
        levels = (1, 8, 32)
        runs: dict[int, list[dict[str, Any]]] = {c: [] for c in levels}
        for rep in range(args.reps):  # interleaved, so that a noisy minute hits every level
            for clients in levels:
                console.print(f"[dim]running {clients} clients, repetition {rep + 1}…[/]")
                runs[clients].append(concurrent(url, pid, body, clients, per_level))
        results["concurrency"] = {
            str(c): {
                "requests": per_level,
                **{key: summary([r[key] for r in rs]) for key in SUMMARISED},
                "runs": rs,
            }
            for c, rs in runs.items()
        }
        console.print(f"[dim]running memory ({n_memory:,} never-seen requests)…[/]")
        budget = None if args.memory_minutes is None else args.memory_minutes * 60
        results["memory"] = memory(url, pid, n_memory, 8, budget, console)
        results["server_log_tail"] = (Path(tmp) / "serve.log").read_text(errors="replace")[-2000:]
    results["load_average_end"] = os.getloadavg()
    p99_8 = results["concurrency"]["8"]["p99_ms"]["median"]
    results["target"] = {"p99_ms_8_clients": p99_8, "limit_ms": 50, "met": p99_8 < 50}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    report(results, console)
    console.print(f"[dim]written to {args.out}[/]")


if __name__ == "__main__":
    main()
