"""FHIR R4 onto the scenario (engine.fhir.mapping), claim by claim.

Each claim of the mapping, and each refusal, has a hand-written patient Bundle in
fixtures/fhir/bundles (its README says what each shows). Every mapping made here is checked to be
a valid scenario; the end-to-end table evaluates a few. What cannot be read, the shapes of a
request, the limits and a property test (junk at random paths) are in
tests/test_fhir_mapping_refusals.py.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import pytest
from conftest import FIXTURES

from engine import KnowledgeBase, evaluate, parse_scenario
from engine.fhir.mapping import FhirMapping, map_patient

BUNDLES = FIXTURES / "fhir" / "bundles"
AS_OF = dt.date(2026, 11, 25)
DOSE_NOTE = (
    "doseAndRate: the pack defines no dose bands to read a quantity in, so the dose is not read "
    "as low, standard or high; left unknown"
)
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"


def bundle(name: str) -> dict[str, Any]:
    return json.loads((BUNDLES / f"{name}.json").read_text())


def mapped(kb: KnowledgeBase, data: Any, **kwargs: Any) -> FhirMapping:
    """map_patient as of AS_OF; whatever it gives must be a valid scenario."""
    out = map_patient(bundle(data) if isinstance(data, str) else data, kb, as_of=AS_OF, **kwargs)
    parse_scenario(out.scenario)
    return out


def problems(m: FhirMapping) -> list[tuple[str, str]]:
    return [(u.where, u.reason) for u in m.unmapped]


def resource(data: dict[str, Any], rid: str) -> dict[str, Any]:
    return next(e["resource"] for e in data["entry"] if e["resource"].get("id") == rid)


def code(value: str, system: str) -> dict[str, str]:
    return {"code": value, "system": system}


def test_every_bundle_is_described_once() -> None:
    described = [
        line.split("`")[1]
        for line in (BUNDLES / "README.md").read_text().splitlines()
        if line.startswith("- `")
    ]
    assert sorted(described) == sorted(p.name for p in BUNDLES.glob("*.json"))
    for path in BUNDLES.glob("*.json"):
        data = json.loads(path.read_text())
        assert data["resourceType"] == "Bundle"
        resources = [
            e["resource"] for e in data["entry"] if isinstance(e, dict) and "resource" in e
        ]
        assert any(r.get("resourceType") == "Patient" for r in resources if isinstance(r, dict))


# -- Patient.birthDate -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("birth_date", "age"),
    [
        ("2016-03-04", 10),
        ("2016-11-25", 10),  # tenth birthday on as_of
        ("2016-11-26", 9),
        ("2008-11-25", 18),
        ("2008-11-26", 17),
        ("2000-05", 26),  # 26 whichever day of May
        ("2026", 0),  # born this year, by as_of
        ("2026-11", 0),
        ("2010", 15),  # 15 or 16: both under 18, the lower kept
    ],
)
def test_birth_date_gives_age_in_completed_years(
    kb: KnowledgeBase, birth_date: str, age: int
) -> None:
    data = bundle("child-absence-seizures-clonazepam")
    resource(data, "pat-child-01")["birthDate"] = birth_date
    m = mapped(kb, data)
    assert m.scenario["patient"] == {"age": age}
    assert [r for _, r in problems(m) if "birthDate" in r] == []


def test_year_only_birth_date_of_an_adult_gives_the_lower_age(kb: KnowledgeBase) -> None:
    m = mapped(kb, "birthdate-year-only-adult")
    assert m.scenario["patient"] == {"age": 35}
    assert m.unmapped == []


def test_partial_birth_date_either_side_of_18_leaves_age_unknown(kb: KnowledgeBase) -> None:
    m = mapped(kb, "birthdate-year-month-straddles-18")
    assert "patient" not in m.scenario
    assert problems(m) == [
        (
            "entry[0].resource Patient/pat-by-02",
            "birthDate 2008-11 gives an age of 17 or 18 on 2026-11-25, and the pack's age test "
            "(lt 18) differs between them; the age is left unknown",
        )
    ]
    result = evaluate(m.scenario)
    assert {u.rule: u.needs for u in result.undetermined}["epilepsy-children"] == ["patient.age"]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("birthdate-in-future", "birthDate is after 2026-11-25; the age is left unknown"),
        (
            "birthdate-garbage",
            "birthDate '14/02/2010' is not a date (YYYY, YYYY-MM or YYYY-MM-DD); the age is left "
            "unknown",
        ),
    ],
)
def test_unusable_birth_date_is_reported_and_age_unknown(
    kb: KnowledgeBase, name: str, reason: str
) -> None:
    m = mapped(kb, name)
    assert "patient" not in m.scenario
    assert [r for _, r in problems(m)] == [reason]
    assert m.scenario["conditions"] == [code("84757009", "SNOMED-CT")]  # the rest is used


@pytest.mark.parametrize(
    ("birth_date", "reason"),
    [
        ("2010-02-30", "birthDate '2010-02-30' is not a calendar date; the age is left unknown"),
        ("1890-01-01", "birthDate gives an age over 130; left unknown"),
        (20100214, "birthDate is a number, not text; the age is left unknown"),
        (
            "20100214",  # not the year 2010
            "birthDate '20100214' is not a date (YYYY, YYYY-MM or YYYY-MM-DD); the age is left "
            "unknown",
        ),
    ],
)
def test_impossible_birth_dates(kb: KnowledgeBase, birth_date: Any, reason: str) -> None:
    data = bundle("birthdate-garbage")
    resource(data, "pat-by-04")["birthDate"] = birth_date
    m = mapped(kb, data)
    assert "patient" not in m.scenario
    assert [r for _, r in problems(m)] == [reason]


# -- Conditions ------------------------------------------------------------------------------------


def test_only_current_conditions_are_kept_and_the_rest_counted(kb: KnowledgeBase) -> None:
    m = mapped(kb, "condition-statuses")
    assert m.scenario["conditions"] == [
        code("84757009", "SNOMED-CT"),  # recurrence
        code("371631005", "SNOMED-CT"),  # relapse, provisional
        code("G25.81", "ICD-10-CM"),  # no clinicalStatus: kept
    ]
    assert m.left_out == {
        "Condition: clinicalStatus resolved": 2,  # one of them the STU3 string "resolved"
        "Condition: clinicalStatus inactive": 1,
        "Condition: clinicalStatus remission": 1,
        "Condition: verificationStatus refuted": 1,
        "Condition: verificationStatus entered-in-error": 1,
    }
    assert m.unmapped == [] and m.unrecognised_conditions == 0


def test_icd10cm_code_is_recognised_through_the_hierarchy(kb: KnowledgeBase) -> None:
    m = mapped(kb, "child-absence-seizures-clonazepam")
    assert m.scenario["conditions"] == [code("G40.A09", "ICD-10-CM")]
    assert m.unrecognised_conditions == 0
    result = evaluate(m.scenario)
    (because,) = next(s for s in result.statements if s.rule == "seizure-types").because
    assert because.concept == "absence-seizures"


def test_text_is_the_label_when_no_coding_is_known_and_unrelated_codes_are_kept(
    kb: KnowledgeBase,
) -> None:
    m = mapped(kb, "adult-restless-legs-text-label")  # STU3-style status strings too
    assert m.scenario["conditions"] == [
        "restless legs syndrome",
        code("66383009", "SNOMED-CT"),  # gingivitis
        code("44465007", "SNOMED-CT"),  # sprain of ankle
    ]
    assert m.unrecognised_conditions == 2
    assert m.unmapped == [] and m.left_out == {}
    result = evaluate(m.scenario)
    assert sorted(u.input for u in result.unrecognized) == [
        "44465007 (SNOMED-CT)",
        "66383009 (SNOMED-CT)",
    ]


def test_a_codings_display_is_the_label_without_its_semantic_tag(kb: KnowledgeBase) -> None:
    m = mapped(kb, "bundle-junk-entries")  # SNOMED 4229009 is not bound: "Akathisia (finding)"
    assert m.scenario["conditions"] == ["Akathisia"]


def test_a_condition_listed_twice_is_kept_once(kb: KnowledgeBase) -> None:
    data = bundle("adult-restless-legs-text-label")
    data["entry"].append(copy.deepcopy(data["entry"][2]))
    m = mapped(kb, data)
    assert len(m.scenario["conditions"]) == 3
    assert m.unrecognised_conditions == 2


# -- Medications -----------------------------------------------------------------------------------


def test_only_current_orders_and_statements_are_read(kb: KnowledgeBase) -> None:
    m = mapped(kb, "medication-statuses")
    assert m.scenario["medications"] == [
        code("8183", "RxNorm"),  # active
        "Valium",  # on-hold
        "levetiracetam",  # draft; its ATC code is not bound, its display is known
        code("99999902", "RxNorm"),  # active statement, a drug the pack does not know: kept
        "sertraline",  # intended statement, known to no concept: kept, after the known ones
    ]
    assert m.left_out == {
        "MedicationRequest: status completed": 1,
        "MedicationRequest: status stopped": 1,  # clonazepam: no therapy from it
        "MedicationRequest: status cancelled": 1,
        "MedicationStatement: status completed": 1,
        "MedicationStatement: status not-taken": 1,
        "MedicationStatement: status entered-in-error": 1,
    }
    assert m.subject_orders == [] and "therapy" not in m.scenario
    rules = [s.rule for s in evaluate(m.scenario).statements]
    assert rules == ["same-family-as-current-benzodiazepine"]  # Valium is diazepam


def test_product_code_of_the_subject_drug_gives_therapy_not_a_medication(
    kb: KnowledgeBase,
) -> None:
    m = mapped(kb, "child-absence-seizures-clonazepam")  # 197527 clonazepam 0.5 MG Oral Tablet
    assert m.subject_orders == ["MedicationRequest/mr-clonazepam"]
    assert m.scenario["medications"] == [code("8183", "RxNorm")]  # phenytoin
    assert m.scenario["therapy"] == {"intent": "long-term", "duration_years": 0.5}


def test_medication_references_resolve(kb: KnowledgeBase) -> None:
    m = mapped(kb, "medication-references")
    assert m.scenario["medications"] == [
        code("8183", "RxNorm"),  # urn:uuid:<id> of a Medication in the bundle
        "Dilantin",  # not in the bundle: its display
        code("99999901", "RxNorm"),  # Medication/<id>; a drug the pack does not know
    ]
    assert m.subject_orders == ["MedicationRequest/mr-clonazepam-contained"]  # "#med1"
    assert m.scenario["therapy"] == {"intent": "acute"}
    assert problems(m) == [
        (
            "entry[7].resource MedicationStatement/ms-dangling-bare",
            "medicationReference 'Medication/also-not-here' not found",
        )
    ]


def test_medication_reference_by_resource_id(kb: KnowledgeBase) -> None:
    m = mapped(kb, "adult-panic-continuous-over-three-years")  # Medication/med-clonazepam: 2598
    assert m.subject_orders == ["MedicationRequest/mr-clonazepam-long"]
    assert m.scenario["medications"] == []


# -- Therapy from the subject order ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "therapy"),
    [
        # boundsDuration 6 mo
        ("child-absence-seizures-clonazepam", {"intent": "long-term", "duration_years": 0.5}),
        # boundsDuration 2 wk, before the 30-day supply
        ("therapy-bounds-duration-acute", {"intent": "acute", "duration_years": 0.0383}),
        # boundsPeriod 2025-01-01..2027-01-01 (730 days), before the supply of 41 x 30 days
        ("therapy-bounds-period-continuous", {"intent": "long-term", "duration_years": 1.9986}),
        # expectedSupplyDuration 90 d x (1 + 12 repeats) = 1170 days
        (
            "adult-panic-continuous-over-three-years",
            {"intent": "long-term", "duration_years": 3.2033},
        ),
        # MedicationStatement.effectivePeriod 2020-11-25..2026-11-25 (2191 days)
        ("therapy-statement-effective-period", {"duration_years": 5.9986}),
    ],
)
def test_intent_and_duration(kb: KnowledgeBase, name: str, therapy: dict[str, Any]) -> None:
    assert mapped(kb, name).scenario["therapy"] == therapy


@pytest.mark.parametrize(
    ("name", "therapy", "reason"),
    [
        (
            "therapy-seasonal",
            None,
            "courseOfTherapyType 'seasonal' has no intent; left unknown",
        ),
        (
            "therapy-negative-repeats",
            {"intent": "long-term"},
            "dispenseRequest.numberOfRepeatsAllowed is not a whole number; the duration is left "
            "unknown",
        ),
    ],
)
def test_unusable_therapy_values_are_reported(
    kb: KnowledgeBase, name: str, therapy: dict[str, Any] | None, reason: str
) -> None:
    m = mapped(kb, name)
    assert m.scenario.get("therapy") == therapy
    assert [r for _, r in problems(m)] == [reason]


@pytest.mark.parametrize(
    "name", ["child-absence-seizures-clonazepam", "therapy-statement-effective-period"]
)
def test_dose_stays_unknown_and_says_why(kb: KnowledgeBase, name: str) -> None:
    # doseAndRate as an object (as published CDS Hooks examples send it) and as an array
    m = mapped(kb, name)
    assert "dose" not in m.scenario["therapy"]
    assert [r for _, r in problems(m)] == [DOSE_NOTE]


def test_the_draft_order_first_then_the_most_recent(kb: KnowledgeBase) -> None:
    data = bundle("orders-draft-and-active")
    m = mapped(kb, data)
    assert m.subject_orders == [
        "MedicationRequest/mr-draft",
        "MedicationRequest/mr-recent-acute",
        "MedicationRequest/mr-old-continuous",
    ]
    assert m.scenario["therapy"] == {"intent": "long-term", "duration_years": 1.0}  # 4 x 3 mo
    data["entry"] = [e for e in data["entry"] if e["resource"].get("id") != "mr-draft"]
    data["entry"].reverse()  # the order in the bundle does not matter
    m = mapped(kb, data)
    assert m.subject_orders[0] == "MedicationRequest/mr-recent-acute"
    # the intent of the most recent order; the duration the longest any order gives (a short new
    # order is not the whole of a use that began before it)
    assert m.scenario["therapy"] == {"intent": "acute", "duration_years": 1.0}
    assert any("gave the therapy's duration (1 years)" in n.reason for n in m.notes)
    only = [e for e in data["entry"] if e["resource"].get("id") != "mr-old-continuous"]
    m = mapped(kb, {**data, "entry": only})
    assert m.scenario["therapy"] == {"intent": "acute", "duration_years": 0.0274}  # 10 days


def test_the_selected_order_gives_therapy(kb: KnowledgeBase) -> None:
    m = mapped(kb, "orders-draft-and-active", selections=("MedicationRequest/mr-recent-acute",))
    assert m.subject_orders == [
        "MedicationRequest/mr-recent-acute",
        "MedicationRequest/mr-draft",
        "MedicationRequest/mr-old-continuous",
    ]
    assert m.scenario["therapy"] == {"intent": "acute", "duration_years": 1.0}


# -- End to end ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "applies", "undetermined"),
    [
        (
            "child-absence-seizures-clonazepam",
            {
                "indication-seizures",
                "primary-uses",
                "epilepsy-children",
                "epilepsy-children-low-plasma-levels",
                "seizure-types",
                "seizure-types-alone-or-combined",
                "seizures-long-term-tolerance",
            },
            set(),
        ),
        (
            "adult-panic-continuous-over-three-years",
            {
                "primary-uses",
                "indication-panic-disorder",
                "panic-with-or-without-agoraphobia",
                "panic-beyond-three-years",
            },
            set(),
        ),
        (
            "therapy-bounds-duration-acute",
            {
                "primary-uses",
                "indication-panic-disorder",
                "panic-with-or-without-agoraphobia",
                "panic-short-term-controlled-trials",
            },
            set(),
        ),
        ("adult-restless-legs-text-label", {"rls-third-line"}, {"rls-before-third-line"}),
        (
            "birthdate-year-month-straddles-18",
            {"indication-seizures", "primary-uses"},
            {
                "seizures-acute-first-line",
                "seizures-long-term-tolerance",
                "epilepsy-children",
                "epilepsy-children-low-plasma-levels",
            },
        ),
    ],
)
def test_end_to_end(kb: KnowledgeBase, name: str, applies: set, undetermined: set) -> None:
    result = evaluate(mapped(kb, name).scenario)
    assert {s.rule for s in result.statements} == applies
    assert {u.rule for u in result.undetermined} == undetermined
    data = bundle(name)
    patient = next(
        e["resource"] for e in data["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    assert result.scenario_id == patient["id"]


def test_a_short_new_order_for_a_long_use_is_read_as_the_long_use(kb: KnowledgeBase) -> None:
    # found in review: a 60-day draft for someone taking clonazepam since 2018 read as 60 days
    draft = {
        "resourceType": "MedicationRequest",
        "id": "new",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "197527"}]},
        "courseOfTherapyType": {"coding": [{"code": "continuous"}]},
        "dispenseRequest": {
            "expectedSupplyDuration": {"value": 30, "code": "d"},
            "numberOfRepeatsAllowed": 1,
        },
    }
    taking = {
        "resourceType": "MedicationStatement",
        "id": "since-2018",
        "status": "active",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "2598"}]},
        "effectivePeriod": {"start": "2018-01-01"},
    }
    panic = {
        "resourceType": "Condition",
        "id": "c",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "371631005"}]},
    }
    m = map_patient([panic, taking], kb, as_of=AS_OF, draft_orders=[draft])
    assert m.subject_orders[0] == "MedicationRequest/new"
    assert m.scenario["therapy"] == {"intent": "long-term", "duration_years": 8.898}  # 3,250 days
    assert "panic-beyond-three-years" in evaluate(m.scenario).rules()
