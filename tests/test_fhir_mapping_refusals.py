"""FHIR R4 onto the scenario (engine.fhir.mapping): what cannot be read, whose it is, the shapes
a request comes in, the limits, and junk at random paths (a property test).

The Bundles are in fixtures/fhir/bundles; tests/test_fhir_mapping.py holds the claims.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_fhir_mapping import AS_OF, DOSE_NOTE, SNOMED, bundle, code, mapped, problems, resource

from engine import KnowledgeBase, evaluate, parse_scenario
from engine.fhir.mapping import Unmapped, map_patient

# -- What cannot be read, and whose it is ----------------------------------------------------------


def test_unreadable_resources_are_reported_where_they_are_and_the_rest_used(
    kb: KnowledgeBase,
) -> None:
    m = mapped(kb, "unreadable-elements")
    assert problems(m) == [
        (
            "entry[2].resource Condition/c-code-string",
            "code is text, not a CodeableConcept; the resource is not used",
        ),
        (
            "entry[3].resource Condition/c-coding-strings",
            "code.coding[0] is text, not a Coding; the resource is not used",
        ),
        (
            "entry[4].resource Condition/c-clinical-number",
            "clinicalStatus is a number, not a CodeableConcept; the resource is not used",
        ),
        (
            "entry[5].resource MedicationRequest/mr-status-number",
            "status is a number, not text; the resource is not used",
        ),
        (
            "entry[6].resource MedicationRequest/mr-clonazepam-no-unit",
            "dispenseRequest.expectedSupplyDuration has no time unit it can be read in (unit "
            "None); the duration is left unknown",
        ),
    ]
    assert m.scenario == {
        "patient": {"age": 14},
        "conditions": [code("G40.A09", "ICD-10-CM")],
        "medications": [],
        "therapy": {"intent": "acute"},
        "id": "pat-bad-01",
    }


def test_resources_of_another_patient_are_not_used(kb: KnowledgeBase) -> None:
    m = mapped(kb, "other-patient-resources")  # the first Patient is the patient
    assert m.patient == "pat-self"
    assert m.scenario == {
        "patient": {"age": 27},
        "conditions": [code("G25.81", "ICD-10-CM")],  # subject by its full URL
        "medications": ["Valium"],  # no subject: taken as the patient's
        "id": "pat-self",
    }
    assert m.subject_orders == []
    assert problems(m) == [
        ("entry[1].resource Patient/pat-other", "a second Patient: only the first is read"),
        ("entry[3].resource Condition/c-other-epilepsy", "about another patient: not used"),
        (
            "entry[4].resource MedicationRequest/mr-other-clonazepam",
            "about another patient: not used",
        ),
        (
            "entry[5].resource MedicationStatement/ms-subject-as-text",
            "subject is text, not a Reference; the resource is not used",
        ),
    ]


def test_the_patient_asked_for_is_the_patient(kb: KnowledgeBase) -> None:
    m = mapped(kb, "other-patient-resources", patient_id="pat-other")
    assert m.scenario == {
        "patient": {"age": 11},
        "conditions": [code("84757009", "SNOMED-CT")],
        "medications": ["Valium"],
        "therapy": {"intent": "long-term"},
        "id": "pat-other",
    }
    assert m.subject_orders == ["MedicationRequest/mr-other-clonazepam"]
    assert [w for w, r in problems(m) if r == "about another patient: not used"] == [
        "entry[0].resource Patient/pat-self",
        "entry[2].resource Condition/c-self-rls",
    ]


def test_no_age_from_a_patient_who_is_not_the_one_asked_for(kb: KnowledgeBase) -> None:
    m = mapped(kb, "other-patient-resources", patient_id="pat-nobody")
    assert m.scenario == {"conditions": [], "medications": ["Valium"], "id": "pat-nobody"}
    assert [w for w, r in problems(m) if r == "about another patient: not used"] == [
        "entry[0].resource Patient/pat-self",
        "entry[1].resource Patient/pat-other",
        "entry[2].resource Condition/c-self-rls",
        "entry[3].resource Condition/c-other-epilepsy",
        "entry[4].resource MedicationRequest/mr-other-clonazepam",
    ]


def test_non_resources_are_reported_and_unread_types_counted(kb: KnowledgeBase) -> None:
    m = mapped(kb, "bundle-junk-entries")
    assert problems(m) == [
        ("entry[1]", "a Bundle entry without a resource object"),
        ("entry[2]", "a Bundle entry without a resource object"),
        ("entry[3]", "a Bundle entry without a resource object"),
        ("entry[4]", "a Bundle entry whose resource has no resourceType"),
        # what a server says about its search is reported with its words, not counted away
        ("entry[9].resource OperationOutcome", "an OperationOutcome: search results truncated"),
    ]
    assert m.left_out == {
        "Observation: not read by the mapping": 2,
        "Encounter: not read by the mapping": 1,
    }
    assert m.scenario["conditions"] == ["Akathisia"]  # not "epilepsy" from the untyped entry


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("not fhir", [("(top)", "text, not a resource")]),
        ({"resourceType": 7}, [("(top)", "resourceType is a number")]),
        (
            [[[[[[{"resourceType": "Patient"}]]]]]],
            [("[0][0][0][0][0]", "nested too deeply to be read")],
        ),
        (None, []),
    ],
)
def test_what_is_not_fhir_at_all(kb: KnowledgeBase, data: Any, expected: list) -> None:
    m = map_patient(data, kb, as_of=AS_OF)
    assert problems(m) == expected
    assert m.scenario == {"conditions": [], "medications": []}


def edited(name: str, rid: str, path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """A bundle with one value of one resource replaced."""
    data = bundle(name)
    node = resource(data, rid)
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("where", "value", "conditions", "reason"),
    [
        # what no scenario text may hold: a control character, a lone surrogate
        (("code", "text"), "restless\x00legs  syndrome", ["restless legs syndrome"], None),
        (("code", "text"), "restless legs\ud800", ["restless legs"], None),
        (("code", "text"), " \x07 ", [], "no code and no text: nothing to recognise it by"),
        (
            ("code", "coding", 0, "code"),
            "NEURO\x1b[2J",
            [],
            "code.coding[0].code holds a control character or lone surrogate; the resource is not "
            "used",
        ),
        (("code", "coding", 0, "system"), SNOMED, ["restless legs syndrome"], None),
    ],
)
def test_text_no_scenario_can_hold(
    kb: KnowledgeBase, where: tuple, value: str, conditions: list, reason: str | None
) -> None:
    data = edited(
        "adult-restless-legs-text-label", "0c1f8a3e-76f4-4a8e-8d38-2c9b6c0d4e01", where, value
    )
    m = mapped(kb, data)
    unrelated = [code("66383009", "SNOMED-CT"), code("44465007", "SNOMED-CT")]
    assert m.scenario["conditions"] == conditions + unrelated
    assert [r for _, r in problems(m)] == ([reason] if reason else [])


@pytest.mark.parametrize(
    ("code_sent", "kept"), [("  G25.81 ", code("G25.81", "ICD-10-CM")), ("   ", None)]
)
def test_codes_are_trimmed(kb: KnowledgeBase, code_sent: str, kept: Any) -> None:
    data = edited("other-patient-resources", "c-self-rls", ("code", "coding", 0, "code"), code_sent)
    m = mapped(kb, data)
    assert m.scenario["conditions"] == ([kept] if kept else [])


BAD_ID = "the patient's id holds a control character or a lone surrogate: no scenario id"


@pytest.mark.parametrize(
    ("pid", "reason"),
    [
        ("", None),
        (
            "pat\nself",
            "the patient's id holds a control character or a lone surrogate: no scenario id",
        ),
        (
            "pat\ud801",
            "the patient's id holds a control character or a lone surrogate: no scenario id",
        ),
    ],
)
def test_a_patient_id_no_scenario_id_can_be(kb: KnowledgeBase, pid: str, reason: str) -> None:
    data = bundle("birthdate-year-only-adult")
    data["entry"] = data["entry"][:1]
    resource(data, "pat-by-01")["id"] = pid
    m = mapped(kb, data)
    assert "id" not in m.scenario and m.scenario["patient"] == {"age": 35}
    assert [r for _, r in problems(m)] == ([reason] if reason else [])


def test_the_mapping_can_always_be_written_as_utf8(kb: KnowledgeBase) -> None:
    data = bundle("condition-statuses")
    resource(data, "c-bruxism-resolved")["clinicalStatus"] = "gone\ud800"
    resource(data, "c-akathisia-inactive").update(id="c\ud801", clinicalStatus=7)
    m = mapped(kb, data)
    assert m.left_out["Condition: clinicalStatus gone\\ud800"] == 1
    assert [w for w, _ in problems(m)] == ["entry[5].resource Condition/c\\ud801"]
    assert json.loads(m.model_dump_json())["unmapped"][0]["where"].endswith("c\\ud801")


def test_a_number_too_large_for_a_float(kb: KnowledgeBase) -> None:
    path = ("dispenseRequest", "expectedSupplyDuration", "value")
    data = edited("adult-panic-continuous-over-three-years", "mr-clonazepam-long", path, 10**400)
    m = mapped(kb, data)
    assert m.scenario["therapy"] == {"intent": "long-term"}
    assert [r for _, r in problems(m)] == [
        "dispenseRequest.expectedSupplyDuration.value is not a finite number; the duration is "
        "left unknown"
    ]


# -- The shapes a request comes in -----------------------------------------------------------------


def test_a_prefetch_object_and_a_list_read_as_the_bundle(kb: KnowledgeBase) -> None:
    data = bundle("child-absence-seizures-clonazepam")
    res = [e["resource"] for e in data["entry"]]
    prefetch = {
        "patient": res[0],
        "conditions": {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": res[1]}],
        },
        "medications": {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": r} for r in res[2:]],
        },
        "allergies": None,  # prefetch said: no data
    }
    from_bundle = mapped(kb, data)
    for shape, where in [
        (prefetch, "medications.entry[0].resource MedicationRequest/mr-clonazepam"),
        (res, "[2] MedicationRequest/mr-clonazepam"),
    ]:
        m = mapped(kb, shape, patient_id="pat-child-01")
        assert m.scenario == from_bundle.scenario
        assert problems(m) == [(where, DOSE_NOTE)]


def test_draft_orders_of_an_order_hook(kb: KnowledgeBase) -> None:
    data = bundle("orders-draft-and-active")
    drafts = {"resourceType": "Bundle", "type": "collection", "entry": [data["entry"].pop()]}
    m = mapped(kb, data, patient_id="pat-orders-01", draft_orders=drafts)
    assert m.subject_orders[0] == "MedicationRequest/mr-draft"
    assert m.scenario["therapy"] == {"intent": "long-term", "duration_years": 1.0}
    drafts["entry"][0]["resource"]["dispenseRequest"]["expectedSupplyDuration"].pop("code")
    drafts["entry"][0]["resource"]["dispenseRequest"]["expectedSupplyDuration"]["unit"] = (
        "fortnight"
    )
    m = mapped(kb, data, patient_id="pat-orders-01", draft_orders=drafts)
    assert problems(m) == [
        (
            "context.draftOrders.entry[0].resource MedicationRequest/mr-draft",
            "dispenseRequest.expectedSupplyDuration has no time unit it can be read in (unit "
            "'fortnight'); the duration is left unknown",
        )
    ]


# -- Limits ----------------------------------------------------------------------------------------


def condition(i: int, concept: Any) -> dict[str, Any]:
    return {"resource": {"resourceType": "Condition", "id": f"c{i}", "code": concept}}


def test_more_than_100_conditions_keep_the_recognised_first(kb: KnowledgeBase) -> None:
    data = bundle("birthdate-year-only-adult")  # epilepsy, then 120 unknown codes, then 2 known
    data["entry"] += [
        condition(i, {"coding": [{"system": SNOMED, "code": str(900000 + i)}]}) for i in range(120)
    ]
    data["entry"] += [condition(900, {"text": "panic disorder"}), condition(901, {"text": "RLS"})]
    m = mapped(kb, data)
    conditions = m.scenario["conditions"]
    assert len(conditions) == 100
    assert conditions[:4] == [
        code("84757009", "SNOMED-CT"),
        "panic disorder",
        "RLS",
        code("900000", "SNOMED-CT"),
    ]
    assert conditions[-1] == code("900096", "SNOMED-CT")
    assert m.left_out == {"conditions: beyond the first 100": 23}
    assert m.unrecognised_conditions == 97


def test_more_than_100_problems_are_counted(kb: KnowledgeBase) -> None:
    data = bundle("birthdate-year-only-adult")
    data["entry"] += [condition(i, "G40") for i in range(130)]
    m = mapped(kb, data)
    assert len(m.unmapped) == 100 and m.unmapped_more == 30
    assert m.unmapped[0].where == "entry[2].resource Condition/c0"
    assert m.scenario["conditions"] == [code("84757009", "SNOMED-CT")]


# -- Junk at random paths --------------------------------------------------------------------------

KEYS = [
    "resourceType", "id", "subject", "reference", "birthDate", "clinicalStatus",
    "verificationStatus", "code", "coding", "system", "display", "text", "status",
    "medicationCodeableConcept", "medicationReference", "contained", "courseOfTherapyType",
    "dosageInstruction", "dosage", "timing", "repeat", "boundsDuration", "boundsPeriod",
    "doseAndRate", "dispenseRequest", "expectedSupplyDuration", "numberOfRepeatsAllowed",
    "effectivePeriod", "start", "end", "value", "unit", "authoredOn", "entry", "resource",
]  # fmt: skip
WORDS = [
    "", " ", "active", "resolved", "refuted", "draft", "stopped", "continuous", "acute",
    "seasonal", "2008", "2008-11", "2026-02-30", "0000", "9999-12-31", "G40.A09", "197527",
    "2598", "84757009", "Patient/pat-junk", "Patient/other", "urn:uuid:med-junk", "#med1",
    "Medication/med-junk", "d", "mo", "a", "wk", "Patient", "Condition", "Bundle",
    "http://snomed.info/sct", "http://hl7.org/fhir/sid/icd-10-cm", "\x00", "\ud800", "x\x1by",
    "epilepsy", "panic disorder (disorder)",
]  # fmt: skip
ODD = ["\x00", "\x1b", "\x85", "\ud800", "\u202e", "\t", " ", "a", "7", "-", "é"]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([10**400, -(10**400), -1, 0, 2**63])
    | st.floats()
    | st.text(st.sampled_from(ODD) | st.characters(), max_size=10)
    | st.sampled_from(WORDS)
)
JUNK = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
MONTHS = {"start": "2026-01", "end": "2026-07"}  # 2026-01-01 to 2026-07-31: 211 days
RX = {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "197527"}
VALID = {
    "resourceType": "Bundle",
    "type": "collection",
    "entry": [
        {"resource": {"resourceType": "Patient", "id": "pat-junk", "birthDate": "2012-06-01"}},
        {"resource": {"resourceType": "Medication", "id": "med-junk", "code": {"coding": [RX]}}},
        {
            "resource": {
                "resourceType": "Condition",
                "id": "c",
                "clinicalStatus": {"coding": [{"code": "active"}]},
                "verificationStatus": {"coding": [{"code": "confirmed"}]},
                "code": {"coding": [{"system": SNOMED, "code": "84757009"}], "text": "Epilepsy"},
                "subject": {"reference": "Patient/pat-junk"},
            }
        },
        {
            "resource": {
                "resourceType": "Condition",
                "id": "c2",
                "clinicalStatus": "active",
                "code": {"coding": [{"system": "urn:local", "code": "RLS"}], "text": "RLS"},
            }
        },
        {
            "resource": {
                "resourceType": "MedicationStatement",
                "id": "s2",
                "status": "intended",
                "medicationCodeableConcept": {"text": "Valium"},
                "subject": {"reference": "Patient/pat-junk"},
            }
        },
        {
            "resource": {
                "resourceType": "MedicationRequest",
                "id": "m",
                "status": "active",
                "contained": [{"resourceType": "Medication", "id": "med1", "code": {"text": "x"}}],
                "medicationCodeableConcept": {"coding": [RX]},
                "subject": {"reference": "Patient/pat-junk"},
                "authoredOn": "2026-01-01",
                "courseOfTherapyType": {"coding": [{"code": "continuous"}]},
                "dosageInstruction": [
                    {
                        "timing": {"repeat": {"boundsPeriod": MONTHS}},
                        "doseAndRate": [{"doseQuantity": {"value": 0.5, "unit": "mg"}}],
                    }
                ],
                "dispenseRequest": {
                    "numberOfRepeatsAllowed": 2,
                    "expectedSupplyDuration": {"value": 30, "code": "d"},
                },
            }
        },
        {
            "resource": {
                "resourceType": "MedicationStatement",
                "id": "s",
                "status": "active",
                "medicationReference": {"reference": "Medication/med-junk"},
                "effectivePeriod": {"start": "2020", "end": "2026-11-01"},
            }
        },
    ],
}


def paths(node: Any, path: tuple = ()) -> list[tuple]:
    """The path of every value in a JSON value, the value itself first."""
    if isinstance(node, dict):
        children = list(node.items())
    elif isinstance(node, list):
        children = list(enumerate(node))
    else:
        children = []
    return [path] + [p for key, child in children for p in paths(child, (*path, key))]


def at(node: Any, path: tuple) -> Any:
    for step in path:
        node = node[step]
    return node


@given(data=st.data(), patient_id=st.sampled_from([None, "pat-junk", "other"]))
def test_junk_at_any_path_is_reported_never_raised(
    kb: KnowledgeBase, data: st.DataObject, patient_id: str | None
) -> None:
    junk = copy.deepcopy(VALID)
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        if data.draw(st.booleans(), label="replace a value"):
            path = data.draw(st.sampled_from(paths(junk)[1:]), label="path")
            at(junk, path[:-1])[path[-1]] = data.draw(JUNK, label="junk")
            continue
        containers = [p for p in paths(junk) if isinstance(at(junk, p), dict | list)]
        node = at(junk, data.draw(st.sampled_from(containers), label="add to"))
        if isinstance(node, dict):
            node[data.draw(st.sampled_from(KEYS), label="key")] = data.draw(JUNK, label="junk")
        else:
            node.append(data.draw(JUNK, label="junk"))
    m = map_patient(
        junk, kb, as_of=AS_OF, patient_id=patient_id, selections=("MedicationRequest/m",)
    )
    assert all(isinstance(u, Unmapped) and u.where and u.reason for u in m.unmapped)
    assert set(m.scenario) <= {"id", "patient", "conditions", "medications", "therapy"}
    parse_scenario(m.scenario)
    evaluate(m.scenario)


def test_the_bundle_the_junk_goes_into_maps_fully(kb: KnowledgeBase) -> None:
    m = mapped(kb, copy.deepcopy(VALID))
    assert m.scenario == {
        "patient": {"age": 14},
        "conditions": [code("84757009", "SNOMED-CT"), "RLS"],
        "medications": ["Valium"],
        # the statement's effectivePeriod (2020 to 2026-11-01) is longer than the order's
        # (2026-01-01 to 2026-07-31): the longest is the duration
        "therapy": {"intent": "long-term", "duration_years": 6.8337},
        "id": "pat-junk",
    }
    assert m.subject_orders == ["MedicationRequest/m", "MedicationStatement/s"]
    assert [r for _, r in problems(m)] == [DOSE_NOTE]
