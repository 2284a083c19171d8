"""The committed FHIR Bulk Data export (fixtures/fhir/bulk/synthea-40, made from Synthea patients by
fixtures/fhir/bulk/generate.py; its README says how) is whole and joinable: what the manifest lists
is what is on disk, every line is a resource of its file's type, and every patient reference
resolves. Reads the files only; Synthea is not needed."""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from functools import cache
from itertools import pairwise

import pytest
from conftest import FIXTURES

EXPORT = FIXTURES / "fhir" / "bulk" / "synthea-40"
CLONAZEPAM_RXNORM = "204892"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


@cache
def manifest() -> dict:
    return json.loads((EXPORT / "manifest.json").read_text(encoding="utf-8"))


@cache
def lines(name: str) -> tuple[str, ...]:
    data = (EXPORT / name).read_bytes()
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    text = data.decode("utf-8")
    assert text.endswith("\n") and "\r" not in text, name
    return tuple(text.splitlines())


@cache
def resources(name: str) -> tuple[dict, ...]:
    return tuple(json.loads(line) for line in lines(name))


def of_type(rtype: str) -> list[dict]:
    return [r for o in manifest()["output"] if o["type"] == rtype for r in resources(o["url"])]


def data_files() -> list[str]:
    return sorted(p.name for p in EXPORT.iterdir() if p.name.endswith((".ndjson", ".ndjson.gz")))


def test_the_manifest_is_a_complete_status_body():
    m = manifest()
    assert m["transactionTime"] == "2025-06-01T00:00:00Z"
    assert m["request"].startswith("https://example.org/fhir/$export")
    assert m["requiresAccessToken"] is False
    assert m["error"] == []
    assert all(set(o) == {"type", "url", "count"} for o in m["output"])


def test_the_manifest_lists_exactly_the_files_present_with_their_counts():
    listed = [o["url"] for o in manifest()["output"]]
    assert len(listed) == len(set(listed))
    assert sorted(listed) == data_files()
    for o in manifest()["output"]:
        assert len(lines(o["url"])) == o["count"] > 0, o["url"]


@pytest.mark.parametrize("name", data_files())
def test_every_line_is_a_resource_of_its_files_type(name: str):
    (rtype,) = {o["type"] for o in manifest()["output"] if o["url"] == name}
    assert name.split(".")[0] == rtype
    for line in lines(name):
        resource = json.loads(line)
        assert isinstance(resource, dict)
        assert resource["resourceType"] == rtype
        assert resource["id"]
        assert "urn:uuid:" not in line  # references are relative, <Type>/<id>


def test_ids_are_unique_within_each_type():
    by_type = defaultdict(list)
    for o in manifest()["output"]:
        by_type[o["type"]] += [r["id"] for r in resources(o["url"])]
    for rtype, ids in by_type.items():
        assert len(ids) == len(set(ids)), rtype


def test_every_subject_and_patient_reference_names_a_patient_of_the_export():
    patients = {f"Patient/{p['id']}" for p in of_type("Patient")}
    assert len(patients) == 40
    seen = 0
    for o in manifest()["output"]:
        for r in resources(o["url"]):
            for field in ("subject", "patient"):
                if field in r:
                    assert r[field]["reference"] in patients, (o["url"], r["id"], field)
                    seen += 1
    assert seen > 1000


def test_the_two_condition_files_share_patients():
    files = [o["url"] for o in manifest()["output"] if o["type"] == "Condition"]
    assert len(files) == 2
    first, second = ({r["subject"]["reference"] for r in resources(f)} for f in files)
    assert first & second


def test_the_files_interleave_patients():
    owners = [r["subject"]["reference"] for r in of_type("MedicationRequest")]
    runs = sum(a != b for a, b in pairwise(owners))
    assert runs > len(owners) // 2  # not grouped by patient


def _clonazepam(order: dict) -> bool:
    codings = (order.get("medicationCodeableConcept") or {}).get("coding", [])
    return any(
        (c.get("system") == RXNORM and c.get("code") == CLONAZEPAM_RXNORM)
        or "clonazepam" in c.get("display", "").lower()
        for c in codings
    )


def test_at_least_five_patients_have_clonazepam_orders():
    orders = of_type("MedicationRequest") + of_type("MedicationStatement")
    clonazepam = [o for o in orders if _clonazepam(o)]
    for o in clonazepam:
        displays = [c.get("display", "") for c in o["medicationCodeableConcept"]["coding"]]
        assert any("clonazepam" in d.lower() for d in displays), displays
    assert len({o["subject"]["reference"] for o in clonazepam}) >= 5
