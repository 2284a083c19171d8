"""`caveat population`: a FHIR Bulk Data export read, grouped by patient (in partition files on
disk), pushed down to what the pack can use, evaluated by worker processes (one retry after a
crash) or on Dask, and written as rows or a report.

The exports here are made from the nine Synthea patients of fixtures/fhir/synthea (real data
nobody here wrote), written as a Bulk Data export would be, with their resources shuffled across
files; fixtures/fhir/bulk holds a 40-patient export made the same way by its own script."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import FIXTURES

from engine import evaluate_partition, load_knowledge_base
from engine.fhir.resources import Found, index_medications
from engine.population import run_population
from engine.population.export import ExportError, open_export
from engine.population.partition import group_by_patient, patient_rows
from engine.population.pushdown import absence_lists, decide, patient_of
from engine.population.spill import bucket

SYNTHEA = FIXTURES / "fhir" / "synthea"
AS_OF = dt.date(2025, 6, 1)
KB = load_knowledge_base()
COMPARED = (
    "patient",
    "on_subject_drug",
    "subject_orders",
    "warning",
    "statements",
    "undetermined",
    "not_covered",
    "unmapped",
    "notes",
    "error",
)


def synthea_resources() -> list[dict[str, Any]]:
    out = []
    for path in sorted(SYNTHEA.glob("*.json")):
        bundle = json.loads(path.read_text())
        out.extend(entry["resource"] for entry in bundle["entry"])
    return out


def write_export(
    root: Path,
    resources: list[dict[str, Any]],
    *,
    files_per_type: int = 2,
    gzip_types: tuple[str, ...] = (),
    manifest: dict[str, Any] | None = None,
    seed: int = 7,
) -> Path:
    """Resources as a Bulk Data export: shuffled, each type split over several files."""
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    shuffled = resources[:]
    rng.shuffle(shuffled)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for r in shuffled:
        by_type.setdefault(r["resourceType"], []).append(r)
    output = []
    for rtype, items in sorted(by_type.items()):
        for part in range(files_per_type):
            chunk = items[part::files_per_type]
            if not chunk:
                continue
            name = f"{rtype}.{part + 1}.ndjson"
            data = b"".join(orjson.dumps(r) + b"\n" for r in chunk)
            if rtype in gzip_types:
                name += ".gz"
                data = gzip.compress(data, mtime=0)
            (root / name).write_bytes(data)
            output.append(
                {"type": rtype, "url": f"https://example.org/files/{name}", "count": len(chunk)}
            )
    body = {
        "transactionTime": "2025-06-01T08:00:00Z",
        "request": "https://example.org/$export",
        "requiresAccessToken": False,
        "output": output,
        "error": [],
    }
    if manifest is not None:
        body.update(manifest)
    (root / "manifest.json").write_bytes(orjson.dumps(body))
    return root


def rows_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def by_patient(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["patient"]: r for r in rows}


def comparable(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row[k] for k in COMPARED}
    out["unrecognised"] = sorted({*row["unrecognised"], *row.get("also_unrecognised", [])})
    return out


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_export(
        tmp_path_factory.mktemp("export"), synthea_resources(), gzip_types=("Condition",)
    )


@pytest.fixture(scope="module")
def local_rows(export: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    out = tmp_path_factory.mktemp("out") / "rows.jsonl"
    summary = run_population(export, kb=KB, out=out, partitions=3, workers=2)
    assert summary.complete
    return rows_of(out)


# -- grouping ------------------------------------------------------------------------------------


def test_each_patients_row_is_the_row_of_their_whole_record(local_rows):
    """Resources shuffled across two files per type (one of them gzip-compressed) and three
    partitions come together: every row equals the row evaluate_partition makes from that
    patient's whole record, push-down and all."""
    everything = synthea_resources()
    direct = by_patient(
        [r.model_dump(mode="json") for r in evaluate_partition(everything, KB, as_of=AS_OF)]
    )
    got = by_patient(local_rows)
    assert set(got) == set(direct)
    assert len(got) == 4  # the nine hold four with an active clonazepam order
    for pid, row in got.items():
        assert comparable(row) == comparable(direct[pid]), pid


def test_patients_land_in_more_than_one_partition(local_rows):
    assert len({bucket(r["patient"], 3) for r in local_rows}) > 1


def test_the_export_date_is_the_default_as_of_and_the_output_says_so(export, tmp_path):
    summary = run_population(export, kb=KB, out=tmp_path / "a.jsonl", workers=1)
    assert (summary.as_of, summary.as_of_from) == (AS_OF, "manifest transactionTime")
    given = run_population(
        export, kb=KB, out=tmp_path / "b.jsonl", workers=1, as_of=dt.date(2030, 1, 1)
    )
    assert (given.as_of, given.as_of_from) == (dt.date(2030, 1, 1), "--as-of")
    run_population(export, kb=KB, out=tmp_path / "c.jsonl", workers=2, partitions=5)
    # reproducible: the same rows (in patient order within partitions, which differ)
    assert sorted(rows_of(tmp_path / "a.jsonl"), key=lambda r: r["patient"]) == sorted(
        rows_of(tmp_path / "c.jsonl"), key=lambda r: r["patient"]
    )
    ages = {
        r["patient"]: r["scenario"].get("patient", {}).get("age")
        for r in rows_of(tmp_path / "a.jsonl")
    }
    later = {
        r["patient"]: r["scenario"].get("patient", {}).get("age")
        for r in rows_of(tmp_path / "b.jsonl")
    }
    assert any(later[p] is not None and ages[p] is not None and later[p] > ages[p] for p in ages)


def test_without_a_manifest_time_it_is_today_and_says_so(tmp_path):
    root = write_export(tmp_path / "e", synthea_resources(), manifest={"transactionTime": None})
    summary = run_population(root, kb=KB, out=tmp_path / "r.jsonl", today=dt.date(2026, 1, 2))
    assert (summary.as_of, summary.as_of_from) == (dt.date(2026, 1, 2), "today")


def test_every_patient_with_all(export, tmp_path):
    summary = run_population(export, kb=KB, out=tmp_path / "r.jsonl", everyone=True)
    rows = rows_of(tmp_path / "r.jsonl")
    assert summary.patients == summary.patients_evaluated == len(rows) == 9
    assert summary.patients_on_subject_drug == sum(r["on_subject_drug"] for r in rows) < 9


# -- what cannot be read is reported -------------------------------------------------------------


def test_a_malformed_line_among_good_ones_is_reported_with_file_and_line(tmp_path):
    root = write_export(tmp_path / "e", synthea_resources(), files_per_type=1)
    path = root / "Condition.1.ndjson"
    lines = path.read_bytes().splitlines(keepends=True)
    lines.insert(3, b'{"resourceType": "Condition", "id": \n')
    lines.insert(6, b"[1, 2]\n")
    path.write_bytes(b"".join(lines))
    summary = run_population(root, kb=KB, out=tmp_path / "r.jsonl")
    where = [(u.file, u.line) for u in summary.reading.unreadable]
    assert where == [("Condition.1.ndjson", 4), ("Condition.1.ndjson", 7)]
    assert "not JSON" in summary.reading.unreadable[0].reason
    assert "not a resource" in summary.reading.unreadable[1].reason
    assert summary.patients_evaluated == 4  # the rest was read
    assert not summary.complete


def test_resources_naming_no_patient_are_reported(tmp_path):
    resources = synthea_resources()
    orphan = next(r for r in resources if r["resourceType"] == "Condition")
    orphan = {k: v for k, v in orphan.items() if k != "subject"}
    root = write_export(tmp_path / "e", [*resources, orphan], files_per_type=1)
    summary = run_population(root, kb=KB, out=tmp_path / "r.jsonl")
    [problem] = summary.reading.unreadable
    assert problem.file == "Condition.1.ndjson" and problem.line >= 1
    assert "no reference to a Patient" in problem.reason


def test_a_damaged_gzip_file_is_reported_and_the_rest_evaluated(tmp_path):
    root = write_export(tmp_path / "e", synthea_resources(), gzip_types=("Condition",))
    damaged = root / "Condition.2.ndjson.gz"
    data = damaged.read_bytes()
    damaged.write_bytes(data[: len(data) // 2])
    summary = run_population(root, kb=KB, out=tmp_path / "r.jsonl")
    assert any(
        u.file == "Condition.2.ndjson.gz" and "damaged" in u.reason
        for u in summary.reading.unreadable
    )
    assert summary.patients_evaluated >= 1


def test_the_export_itself_must_be_there(tmp_path):
    with pytest.raises(ExportError, match="no such directory"):
        open_export(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExportError, match="no NDJSON file"):
        open_export(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_text('{"output": [{"type": "Patient", "url": "x/P.ndjson"}]}')
    with pytest.raises(ExportError, match=r"output\[0\] names 'P.ndjson'"):
        open_export(bad)


# -- the push-down -------------------------------------------------------------------------------

CONDITIONS = [
    {"system": "http://snomed.info/sct", "code": "128613002", "display": "Seizure disorder"},
    {"system": "http://snomed.info/sct", "code": "84757009", "display": "Epilepsy"},
    {"system": "http://snomed.info/sct", "code": "21897009", "display": "Generalized anxiety"},
    {"system": "http://snomed.info/sct", "code": "44054006", "display": "Diabetes type 2"},
    {"system": "http://snomed.info/sct", "code": "162864005", "display": "BMI 30+ obesity"},
    {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F41.0", "display": "Panic"},
    {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.9", "display": "Diabetes"},
    {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "G40", "display": "Epilepsy"},
    {"text": "restless legs syndrome"},
    {"text": "knee pain"},
    {"text": "diazepam"},
    {"text": "social phobia"},
]
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
MEDICATIONS = [
    {"coding": [{"system": RXNORM, "code": "197527", "display": "clonazepam 0.5 MG Oral Tablet"}]},
    {"coding": [{"system": RXNORM, "code": "197591", "display": "diazepam 5 MG Oral Tablet"}]},
    {"coding": [{"system": RXNORM, "code": "310798", "display": "Hydrochlorothiazide 25 MG"}]},
    {"coding": [{"system": RXNORM, "code": "999999", "display": "clonazePAM 2 MG Oral Tablet"}]},
    {"text": "phenytoin"},
    {"text": "Dilantin"},
    {"text": "clonazepam"},
    {"coding": [{"system": RXNORM, "code": "314076", "display": "lisinopril 10 MG Oral Tablet"}]},
]


def random_patient(rng: random.Random, pid: str) -> list[dict[str, Any]]:
    subject = {"reference": f"Patient/{pid}"}
    out: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": pid, "birthDate": f"{rng.randint(1930, 2022)}-03-04"}
    ]
    for i in range(rng.randint(0, 8)):
        condition: dict[str, Any] = {
            "resourceType": "Condition",
            "id": f"{pid}-c{i}",
            "subject": subject,
            "code": _concept(rng.choice(CONDITIONS)),
        }
        status = rng.choice([None, "active", "resolved", "relapse"])
        if status:
            condition["clinicalStatus"] = {"coding": [{"code": status}]}
        if rng.random() < 0.15:
            condition["verificationStatus"] = {"coding": [{"code": "refuted"}]}
        out.append(condition)
    for i in range(rng.randint(0, 6)):
        rtype = rng.choice(["MedicationRequest", "MedicationStatement"])
        status = rng.choice(
            ["active", "stopped", "draft", "completed"]
            + (["intended"] if rtype == "MedicationStatement" else ["on-hold"])
        )
        med: dict[str, Any] = {
            "resourceType": rtype,
            "id": f"{pid}-m{i}",
            "status": status,
            "medicationCodeableConcept": rng.choice(MEDICATIONS),
            "subject": subject,
        }
        if rtype == "MedicationRequest":
            med["intent"] = "order"
            med["authoredOn"] = f"{rng.randint(2015, 2025)}-01-0{rng.randint(1, 9)}"
            if rng.random() < 0.5:
                med["courseOfTherapyType"] = {
                    "coding": [{"code": rng.choice(["continuous", "acute", "seasonal"])}]
                }
        out.append(med)
    for i in range(rng.randint(0, 3)):
        out.append(
            {
                "resourceType": "Observation",
                "id": f"{pid}-o{i}",
                "subject": subject,
                "status": "final",
                "code": {"text": "heart rate"},
            }
        )
    return out


def _concept(coding: dict[str, Any]) -> dict[str, Any]:
    if "text" in coding:
        return {"text": coding["text"]}
    return {"coding": [coding], "text": coding["display"]}


def pushed_down(resources: list[dict[str, Any]]):
    index = index_medications(
        [Found("", r) for r in resources if r["resourceType"] == "Medication"]
    )
    kept, markers, dropped = [], {}, 0
    for r in resources:
        decision = decide(r, KB, index)
        if decision.keep:
            kept.append(r)
        else:
            dropped += 1
            if decision.item:
                markers.setdefault(patient_of(r), []).append(decision.item)
    return kept, markers, dropped


def test_the_bundled_pack_tests_absence_of_medications_only():
    """What the push-down may drop depends on it: a condition not recognised can change no
    result of this pack (no rule tests that a condition is absent); a medication can."""
    assert absence_lists(KB) == frozenset({"medications"})


def test_a_dropped_resource_could_not_have_changed_any_row():
    """Property: on generated patients (coded and worded conditions and medications, known and
    unknown, active and not), the rows made from what the push-down keeps equal the rows made
    from every resource; and what it dropped that was not recognised is still listed."""
    rng = random.Random(2026)
    dropped_total = 0
    for n in range(250):
        resources = random_patient(rng, f"p{n}")
        kept, markers, dropped = pushed_down(resources)
        dropped_total += dropped
        groups_all, meds = group_by_patient(resources)
        groups_kept, _ = group_by_patient(kept)
        for pid in groups_all:
            groups_kept.setdefault(pid, [])
        full = dict(patient_rows(groups_all, KB, meds, AS_OF, True))
        less = dict(patient_rows(groups_kept, KB, meds, AS_OF, True, markers))
        for pid in full:
            a, b = full[pid].model_dump(mode="json"), less[pid].model_dump(mode="json")
            assert comparable(a) == comparable(b), (pid, resources)
    assert dropped_total > 250  # it did drop


def test_push_down_keeps_every_order_that_could_be_the_subject_drug():
    rng = random.Random(5)
    for n in range(200):
        for r in random_patient(rng, f"q{n}"):
            wanted = {
                "MedicationRequest": ("active", "on-hold", "draft"),
                "MedicationStatement": ("active", "intended"),
            }
            if r.get("status") in wanted.get(r["resourceType"], ()):
                words = json.dumps(r["medicationCodeableConcept"]).lower()
                if "clonazepam" in words:
                    assert decide(r, KB, {}).keep, r


# -- the crash retry -----------------------------------------------------------------------------


def test_a_worker_killed_mid_partition_costs_a_retry_not_a_partition(export, local_rows, tmp_path):
    killed: list[tuple[int, int]] = []

    def started(partition: int, attempt: int, pid: int) -> None:
        if partition == 1 and attempt == 1:
            os.kill(pid, signal.SIGKILL)
            killed.append((partition, pid))

    out = tmp_path / "rows.jsonl"
    summary = run_population(export, kb=KB, out=out, partitions=3, workers=2, started=started)
    assert killed and not summary.failed_partitions
    assert sorted(rows_of(out), key=lambda r: r["patient"]) == sorted(
        local_rows, key=lambda r: r["patient"]
    )


def test_a_partition_that_fails_twice_is_named_and_the_rest_is_written(export, tmp_path):
    def started(partition: int, attempt: int, pid: int) -> None:
        if partition == 0:
            os.kill(pid, signal.SIGKILL)

    out = tmp_path / "rows.jsonl"
    summary = run_population(export, kb=KB, out=out, partitions=3, workers=2, started=started)
    [failed] = summary.failed_partitions
    assert failed.partition == "part-00000" and len(failed.attempts) == 2
    assert all("died (killed by SIGKILL)" in a for a in failed.attempts)
    lost = {r["patient"] for r in rows_of(out)}
    assert lost and all(bucket(p, 3) != 0 for p in lost)
    assert failed.patients == sum(
        1 for p in {patient_of(r) for r in synthea_resources()} if p and bucket(p, 3) == 0
    )


# -- Dask ----------------------------------------------------------------------------------------


def test_dask_local_cluster_gives_the_same_rows(export, local_rows, tmp_path):
    out = tmp_path / "dask.jsonl"
    summary = run_population(export, kb=KB, out=out, dask="local", partitions=3)
    assert summary.engine == "dask (local)" and not summary.failed_partitions
    assert sorted(rows_of(out), key=lambda r: r["patient"]) == sorted(
        local_rows, key=lambda r: r["patient"]
    )
    assert (
        summary.reading.resources_kept
        == run_population(export, kb=KB, out=tmp_path / "l.jsonl").reading.resources_kept
    )


def test_a_dask_worker_killed_mid_partition_costs_a_retry(export, local_rows, tmp_path):
    """A worker process killed (SIGKILL) as it starts evaluating a partition: the scheduler gives
    the partition to another worker, and every row is there."""
    import dask
    import distributed

    marker = tmp_path / "killed"

    class Killer(distributed.WorkerPlugin):
        name = "test-killer"

        def __init__(self, marker: str) -> None:
            self.marker = marker

        def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
            if finish == "executing" and "evaluate_group" in str(key):
                try:
                    fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                except FileExistsError:
                    return
                os.close(fd)
                os.kill(os.getpid(), signal.SIGKILL)

    out = tmp_path / "rows.jsonl"
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 1}),
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.register_plugin(Killer(str(marker)))
        summary = run_population(
            export, kb=KB, out=out, dask=cluster.scheduler_address, partitions=3
        )
    assert marker.exists() and not summary.failed_partitions
    assert sorted(rows_of(out), key=lambda r: r["patient"]) == sorted(
        local_rows, key=lambda r: r["patient"]
    )


# -- formats and the command ---------------------------------------------------------------------


def caveat(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_csv_and_parquet_hold_the_same_rows(export, local_rows, tmp_path):
    run_population(export, kb=KB, out=tmp_path / "r.csv", fmt="csv")
    with open(tmp_path / "r.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert {r["patient"] for r in table} == {r["patient"] for r in local_rows}
    one = next(r for r in local_rows if r["statements"])
    row = next(r for r in table if r["patient"] == one["patient"])
    assert row["statements"].split("; ") == [s["rule"] for s in one["statements"]]
    assert json.loads(row["scenario"]) == one["scenario"]
    import pyarrow.parquet as pq

    run_population(export, kb=KB, out=tmp_path / "r.parquet", fmt="parquet")
    read = pq.read_table(tmp_path / "r.parquet").to_pylist()
    assert {r["patient"] for r in read} == {r["patient"] for r in local_rows}
    same = next(r for r in read if r["patient"] == one["patient"])
    assert [s["rule"] for s in same["statements"]] == [s["rule"] for s in one["statements"]]
    assert same["as_of"] == AS_OF


def test_the_html_report_names_the_patients_to_review(export, local_rows, tmp_path):
    summary = run_population(export, kb=KB, out=tmp_path / "r.html", fmt="html")
    page = (tmp_path / "r.html").read_text()
    warned = [r["patient"] for r in local_rows if r["warning"]]
    assert warned and summary.patients_with_warning == len(warned)
    for pid in warned:
        assert pid in page
    for heading in (
        "Patients to review",
        "Statements across the population",
        "Codes the pack should learn next",
        "as of <b>2025-06-01</b>",
    ):
        assert heading in page
    assert "<script" not in page and "http" not in page.split("<body>", 1)[1].replace(
        "https://example.org", ""
    )


def test_the_command_writes_the_rows_and_says_what_it_read(export, tmp_path):
    out = tmp_path / "rows.jsonl"
    done = caveat(
        "population",
        str(export),
        "--out",
        str(out),
        "--summary",
        str(tmp_path / "s.json"),
        "--workers",
        "2",
    )
    assert done.returncode == 0, done.stderr
    assert "manifest transactionTime" in done.stderr and "wrote" in done.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["patients_evaluated"] == len(rows_of(out))
    assert summary["reading"]["dropped"]


def test_the_command_refuses_what_it_cannot_do(export, tmp_path):
    parquet = caveat("population", str(export), "--format", "parquet")
    assert parquet.returncode == 2 and "--out FILE.parquet" in parquet.stderr
    missing = caveat("population", str(tmp_path / "none"))
    assert missing.returncode == 2 and "no such directory" in missing.stderr
    spill = caveat("population", str(export), "--spill-dir", str(tmp_path / "nowhere"))
    assert spill.returncode == 2 and "--spill-dir" in spill.stderr


def test_unreadable_lines_make_the_exit_status_2(tmp_path):
    root = write_export(tmp_path / "e", synthea_resources(), files_per_type=1)
    with open(root / "Patient.1.ndjson", "ab") as f:
        f.write(b"garbage\n")
    done = caveat("population", str(root), "--out", str(tmp_path / "r.jsonl"))
    assert done.returncode == 2, done.stderr
    assert "Patient.1.ndjson:10: not JSON" in done.stderr
    assert (tmp_path / "r.jsonl").exists()


def test_the_bulk_fixture_is_read_whole():
    root = FIXTURES / "fhir" / "bulk" / "synthea-40"
    if not root.exists():
        pytest.fail("fixtures/fhir/bulk/synthea-40 is missing")
    summary = run_population(root, kb=KB, out=None, stdout=io.BytesIO())
    assert summary.complete
    assert summary.patients == 40 and summary.patients_on_subject_drug >= 4
    assert summary.reading.resources_kept < summary.reading.resources_read / 2


def test_orders_naming_a_medication_resource_are_read_through_it(tmp_path):
    """Synthea writes no Medication resources, so these are made here: an order for clonazepam
    given only as a medicationReference to a Medication in Medication.ndjson is the subject
    drug; one naming a Medication the export lacks is kept, and its row says so."""
    resources = [
        {"resourceType": "Patient", "id": "a", "birthDate": "1990-01-01"},
        {"resourceType": "Patient", "id": "b", "birthDate": "1990-01-01"},
        {"resourceType": "Medication", "id": "clz", "code": MEDICATIONS[0]},
        {
            "resourceType": "MedicationRequest",
            "id": "r1",
            "status": "active",
            "intent": "order",
            "subject": {"reference": "Patient/a"},
            "medicationReference": {"reference": "Medication/clz"},
        },
        {
            "resourceType": "MedicationRequest",
            "id": "r2",
            "status": "active",
            "intent": "order",
            "subject": {"reference": "Patient/b"},
            "medicationReference": {"reference": "Medication/gone", "display": "clonazepam"},
        },
        {
            "resourceType": "Condition",
            "id": "c1",
            "subject": {"reference": "Patient/a"},
            "code": _concept(CONDITIONS[0]),
        },
    ]
    root = write_export(tmp_path / "e", resources, files_per_type=1)
    summary = run_population(root, kb=KB, out=tmp_path / "r.jsonl", everyone=True)
    rows = by_patient(rows_of(tmp_path / "r.jsonl"))
    assert summary.complete and set(rows) == {"a", "b"}
    assert rows["a"]["on_subject_drug"] and rows["a"]["subject_orders"] == ["MedicationRequest/r1"]
    assert "indication-seizures" in [s["rule"] for s in rows["a"]["statements"]]
    assert rows["b"]["on_subject_drug"]  # read by the reference's display, as the mapping does
    assert decide(resources[4], KB, {}).keep


def copies(resources: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """The patients n times over, each copy with ids of its own."""
    ids = [r["id"] for r in resources if r["resourceType"] == "Patient"]
    text = orjson.dumps(resources).decode()
    out: list[dict[str, Any]] = []
    for k in range(n):
        copy = text
        for pid in ids:
            copy = copy.replace(pid, f"{pid}-{k}")
        out.extend(orjson.loads(copy))
    return out


def test_sigterm_stops_the_run_and_leaves_nothing_behind(tmp_path):
    root = write_export(tmp_path / "e", copies(synthea_resources(), 80))
    spill = tmp_path / "spill"
    spill.mkdir()
    out = tmp_path / "rows.jsonl"
    command = [
        sys.executable,
        "-m",
        "engine",
        "population",
        str(root),
        "--out",
        str(out),
        "--spill-dir",
        str(spill),
        "--workers",
        "1",
        "--partitions",
        "16",
    ]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(
        folder.is_dir() and any(folder.iterdir()) for folder in spill.glob("*/*")
    ):
        time.sleep(0.002)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "interrupted by SIGTERM" in err and "was left as it was" in err
    assert list(spill.iterdir()) == []  # the partition files are gone
    assert not out.exists() and not list(tmp_path.glob(".rows.jsonl.*"))


# -- what an independent review found -------------------------------------------------------------


def test_a_reference_of_the_wrong_shape_costs_nothing_but_its_own_line(tmp_path):
    """An order whose medicationReference.reference is an object once made the push-down raise,
    and the whole file it was in was lost: now the order is kept, the mapping says what it could
    not read, and every other line is read."""
    resources = synthea_resources()
    bad = {
        "resourceType": "MedicationRequest",
        "id": "odd",
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"Patient/{_clonazepam_patient()}"},
        "medicationReference": {"reference": {"oops": 1}},
    }
    root = write_export(tmp_path / "e", [bad, *resources], files_per_type=1)
    summary = run_population(root, kb=KB, out=tmp_path / "r.jsonl")
    rows = by_patient(rows_of(tmp_path / "r.jsonl"))
    assert summary.patients_evaluated == 4 and not summary.reading.unreadable
    assert any("MedicationRequest/odd" in u for u in rows[_clonazepam_patient()]["unmapped"])


def _clonazepam_patient() -> str:
    return "908280b6-a47a-4d1a-9062-dbb5830e5308"  # clonazepam-active-epilepsy-anxiety.json


def test_with_all_a_patient_known_only_from_resources_not_kept_has_a_row(tmp_path):
    resources = [
        {
            "resourceType": "Observation",
            "id": "o1",
            "status": "final",
            "subject": {"reference": "Patient/ghost"},
            "code": {"text": "heart rate"},
        },
        {
            "resourceType": "Condition",
            "id": "c1",
            "subject": {"reference": "Patient/ghost"},
            "clinicalStatus": {"coding": [{"code": "resolved"}]},
            "code": {"text": "epilepsy"},
        },
    ]
    root = write_export(tmp_path / "e", resources, files_per_type=1)
    summary = run_population(root, kb=KB, out=tmp_path / "r.jsonl", everyone=True)
    [row] = rows_of(tmp_path / "r.jsonl")
    assert summary.patients == 1 and row["patient"] == "ghost"
    assert any("no Patient resource" in u for u in row["unmapped"])


def test_a_line_too_long_to_hold_is_reported_not_read(tmp_path, monkeypatch):
    import engine.population.export as export_module

    monkeypatch.setattr(export_module, "MAX_LINE", 4096)  # (workers fork after this)
    resources = synthea_resources()
    root = write_export(tmp_path / "e", resources, files_per_type=1)
    with open(root / "Patient.1.ndjson", "ab") as f:
        f.write(orjson.dumps({"resourceType": "Patient", "id": "big", "text": "x" * 20_000}))
        f.write(b"\n")
        f.write(orjson.dumps({"resourceType": "Patient", "id": "after"}) + b"\n")
    summary = run_population(root, kb=KB, out=tmp_path / "r.jsonl", everyone=True)
    [problem] = summary.reading.unreadable
    assert (problem.file, problem.line) == ("Patient.1.ndjson", 10)
    assert "longer than" in problem.reason
    assert "after" in {r["patient"] for r in rows_of(tmp_path / "r.jsonl")}


def test_a_full_disk_stops_the_run_and_leaves_out_as_it_was(export, tmp_path, monkeypatch):
    """Fault injection (no disk can be filled here on demand): the spill's writes fail as a
    full disk makes them fail. The run stops with a message naming the folder and --spill-dir,
    is not retried, and the output file is not replaced."""
    import errno

    import engine.population.spill as spill_module
    from engine.population.local import OutOfSpace

    def full(*args: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spill_module, "_flush", full)  # (workers fork after this)
    out = tmp_path / "rows.jsonl"
    out.write_text("the previous rows\n")
    with pytest.raises(OutOfSpace, match=r"no space left in .* --spill-dir"):
        run_population(export, kb=KB, out=out, spill_dir=tmp_path, workers=2)
    assert out.read_text() == "the previous rows\n"
    assert [p.name for p in tmp_path.iterdir()] == ["rows.jsonl"]  # the partitions are gone


def test_a_damaged_gzip_file_says_after_which_line(tmp_path):
    root = write_export(
        tmp_path / "e", synthea_resources(), files_per_type=1, gzip_types=("Condition",)
    )
    path = root / "Condition.1.ndjson.gz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    summary = run_population(root, kb=KB, out=tmp_path / "r.jsonl")
    [problem] = summary.reading.unreadable
    assert problem.file == "Condition.1.ndjson.gz" and problem.line > 1
    assert f"after line {problem.line - 1:,}" in problem.reason
    assert str(root) not in problem.reason


def test_the_output_file_has_the_mode_a_plain_open_gives(export, tmp_path):
    """Written aside with mkstemp (0600) and renamed: its mode is set as open() would set it."""
    out = tmp_path / "rows.jsonl"
    umask = os.umask(0o022)
    try:
        run_population(export, kb=KB, out=out)
    finally:
        os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o644
