"""The input contract: bad input is refused whole, with every problem and its path."""

from __future__ import annotations

import math

import pytest

from engine import ScenarioError, evaluate, parse_scenario


def problems(data) -> dict[str, str]:
    with pytest.raises(ScenarioError) as info:
        evaluate(data)
    assert isinstance(info.value, ValueError)
    return {p.path: p.message for p in info.value.problems}


def test_a_full_scenario_validates():
    s = parse_scenario(
        {
            "id": "case-17",
            "patient": {"age": 9},
            "conditions": ["restless legs syndrome", {"code": "G25.81", "system": "ICD-10-CM"}],
            "medications": ["phenytoin", "Valium"],
            "therapy": {
                "intent": "long-term",
                "duration_years": 2,
                "line": 3,
                "dose": "low",
                "response": "transient",
            },
        }
    )
    assert s.patient.age == 9 and s.therapy.line == 3 and len(s.conditions) == 2


def test_every_problem_is_listed_with_its_path():
    found = problems(
        {
            "patient": {"age": "25"},
            "therapy": {"intent": "weekly", "line": 0, "dose": "tiny", "colour": "red"},
            "conditions": ["epilepsy", 42, {"code": "G40", "system": "ICD-11"}],
            "extra": 1,
        }
    )
    assert set(found) == {
        "patient.age",
        "therapy.intent",
        "therapy.line",
        "therapy.dose",
        "therapy.colour",
        "conditions[1]",
        "conditions[2].system",
        "extra",
    }
    assert "without quotes" in found["patient.age"]
    assert "'acute', 'short-term' or 'long-term'" in found["therapy.intent"]
    assert "greater than or equal to 1" in found["therapy.line"]
    assert "unknown field" in found["therapy.colour"]
    assert "ICD-10-CM" in found["conditions[2].system"]
    assert "label (text) or a mapping" in found["conditions[1]"]


@pytest.mark.parametrize(
    "data,path",
    [
        ({"patient": {"age": -1}}, "patient.age"),
        ({"patient": {"age": 131}}, "patient.age"),
        ({"patient": {"age": True}}, "patient.age"),  # True == 1 to durable_rules
        ({"patient": {"age": math.nan}}, "patient.age"),
        ({"patient": {"age": math.inf}}, "patient.age"),
        ({"therapy": {"duration_years": -0.5}}, "therapy.duration_years"),
        ({"therapy": {"line": 2.5}}, "therapy.line"),
        ({"therapy": {"line": "3"}}, "therapy.line"),
        ({"therapy": {"response": "partial"}}, "therapy.response"),
        ({"therapy": "long-term"}, "therapy"),
        ({"patient": 9}, "patient"),
        ({"conditions": "epilepsy"}, "conditions"),
        ({"conditions": [""]}, "conditions[0]"),
        ({"conditions": [{"code": "G40"}]}, "conditions[0].system"),
        ({"medications": [{"code": "N03AE01", "system": "ATC", "x": 1}]}, "medications[0].x"),
        ({"id": 17}, "id"),
        ({"conditions": ["epilepsy"] * 101}, "conditions"),
    ],
)
def test_bad_values_are_refused(data, path):
    assert path in problems(data)


def test_a_scenario_must_be_a_mapping():
    for bad in (None, [], "epilepsy", 3):
        with pytest.raises(ScenarioError):
            evaluate(bad)


def test_integers_stay_integers_and_floats_are_allowed():
    s = parse_scenario({"patient": {"age": 2.5}, "therapy": {"duration_years": 3}})
    assert s.patient.age == 2.5 and isinstance(s.therapy.duration_years, int)


def test_bad_input_does_not_disturb_the_next_evaluation(kb):
    good = {"conditions": ["panic disorder"], "therapy": {"intent": "short-term"}}
    before = evaluate(good)
    with pytest.raises(ScenarioError):
        evaluate({"conditions": ["panic disorder"], "therapy": {"intent": "sometimes"}})
    assert evaluate(good) == before


def test_error_message_reads_well():
    with pytest.raises(ScenarioError) as info:
        evaluate({"therapy": {"intent": "weekly"}})
    text = str(info.value)
    assert text.startswith("invalid scenario (1 problem(s)):")
    assert "therapy.intent: Input should be 'acute', 'short-term' or 'long-term'" in text
