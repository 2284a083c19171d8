"""The published contract: JSON Schema (draft 2020-12) of a scenario and of a result. A standard
validator must refuse what the engine refuses and accept what it accepts, every property and object
is described for an integrator, and docs/schemas/ holds exactly what `caveat schema` prints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import CASES, REPO, caveat
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from engine import KnowledgeBase, ScenarioError, evaluate, parse_scenario
from engine.casefiles import entries_of, read_cases
from engine.cases import CASE_KEYS
from engine.schemas import NAMES, json_schema, render, unknown_keywords

DOCS = REPO / "docs" / "schemas"
SCENARIO = Draft202012Validator(json_schema("scenario"))
RESULT = Draft202012Validator(json_schema("result"))


def accepted(data: Any) -> bool:
    """Whether the engine accepts a scenario."""
    try:
        parse_scenario(data)
    except ScenarioError:
        return False
    return True


def is_json(data: Any) -> bool:
    """Whether a value can be written as JSON at all (YAML's .nan and .inf cannot)."""
    try:
        json.dumps(data, allow_nan=False)
    except ValueError:
        return False
    return True


def fixture_scenarios() -> list[tuple[str, dict[str, Any]]]:
    """(case name, scenario) of every case in fixtures/cases: the case minus its case keys."""
    out = []
    for item in read_cases([CASES]):
        for entry in entries_of(item):
            assert entry.error is None, entry.error
            scenario = {k: v for k, v in entry.data.items() if k not in CASE_KEYS}
            out.append((entry.name, scenario))
    return out


FIXTURES = fixture_scenarios()
VALID = [(name, s) for name, s in FIXTURES if accepted(s)]


def object_schemas(node: Any) -> list[dict[str, Any]]:
    """Every schema in a document that declares properties (independent of engine.schemas)."""
    found = []
    if isinstance(node, dict):
        if isinstance(node.get("properties"), dict):
            found.append(node)
        for value in node.values():
            found += object_schemas(value)
    elif isinstance(node, list):
        for value in node:
            found += object_schemas(value)
    return found


# -- the documents --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_docs_copies_are_what_caveat_schema_prints(name: str):
    path = DOCS / f"{name}.json"
    regenerate = f"regenerate it: python -m engine schema {name} > docs/schemas/{name}.json"
    assert path.is_file(), f"{path} is missing; {regenerate}"
    text = path.read_text(encoding="utf-8")
    assert text == render(name), f"{path} is out of date; {regenerate}"
    assert json.loads(text) == json_schema(name)
    assert text.endswith("}\n")


@pytest.mark.parametrize("name", NAMES)
def test_a_valid_2020_12_schema_with_its_identity(name: str):
    schema = json_schema(name)
    Draft202012Validator.check_schema(schema)
    assert list(schema)[:4] == ["$schema", "$id", "title", "description"]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"{name}.json"
    assert schema["title"] and "\n" not in schema["description"]
    assert unknown_keywords(schema) == set()
    text = render(name)
    for word in ('"ge"', '"le"', '"gt"', '"lt"', '"max_length"', '"min_length"'):
        assert word not in text, f"{word} is no JSON Schema keyword: no validator enforces it"


def test_a_keyword_no_validator_knows_is_caught():
    assert unknown_keywords({"anyOf": [{"type": "number", "ge": 0}], "properties": {}}) == {"ge"}
    with pytest.raises(ValueError, match="no schema"):
        json_schema("bogus")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", NAMES)
def test_every_property_and_object_is_described(name: str):
    schema = json_schema(name)
    objects = object_schemas(schema)
    assert len(objects) >= (4 if name == "scenario" else 10)
    missing = [
        f"{obj.get('title')}.{prop}"
        for obj in objects
        for prop, sub in obj["properties"].items()
        if not sub.get("description")
    ]
    missing += [f"{obj.get('title')} (the object)" for obj in objects if not obj.get("description")]
    missing += [f"$defs.{k}" for k, sub in schema["$defs"].items() if not sub.get("description")]
    assert missing == []


def test_constraints_come_through():
    schema = json_schema("scenario")
    defs = schema["$defs"]
    age = defs["Patient"]["properties"]["age"]["anyOf"][0]
    assert age == {"type": "number", "minimum": 0, "maximum": 130}
    years = defs["Therapy"]["properties"]["duration_years"]["anyOf"][0]
    assert years == {"type": "number", "minimum": 0, "maximum": 130}
    line = defs["Therapy"]["properties"]["line"]["anyOf"][0]
    assert line == {"type": "integer", "minimum": 1, "maximum": 20}
    assert schema["properties"]["conditions"]["maxItems"] == 100
    label = schema["properties"]["conditions"]["items"]["anyOf"][0]
    assert (label["maxLength"], label["minLength"]) == (200, 1) and label["pattern"]
    systems = defs["Code"]["properties"]["system"]["enum"]
    assert systems == ["ICD-10-CM", "SNOMED-CT", "ATC", "RxNorm"]
    for obj in (schema, defs["Patient"], defs["Therapy"], defs["Code"]):
        assert obj["additionalProperties"] is False


def test_every_result_field_is_required_as_every_result_has_it():
    for obj in object_schemas(json_schema("result")):
        assert sorted(obj["required"]) == sorted(obj["properties"]), obj["title"]


# -- scenarios ------------------------------------------------------------------------------------


def test_the_fixture_library_is_read():
    assert len(FIXTURES) > 150 and len(VALID) > 100
    assert len(FIXTURES) - len(VALID) > 20  # bad-input.yaml: refused scenarios


@pytest.mark.parametrize(("name", "scenario"), VALID, ids=[n for n, _ in VALID])
def test_every_scenario_the_engine_accepts_validates(name: str, scenario: dict[str, Any]):
    data = json.loads(json.dumps(scenario))
    errors = [e.message for e in SCENARIO.iter_errors(data)]
    assert errors == []


def test_every_fixture_scenario_the_engine_refuses_the_schema_refuses():
    refused = [(n, s) for n, s in FIXTURES if not accepted(s)]
    written = [(n, s) for n, s in refused if is_json(s)]
    assert {n for n, s in refused if not is_json(s)} == {"bad-age-nan", "bad-age-infinite"}
    assert [n for n, s in written if SCENARIO.is_valid(json.loads(json.dumps(s)))] == []


@pytest.mark.parametrize(
    "scenario",
    [
        {"patient": {"age": -1}},
        {"patient": {"age": 131}},
        {"patient": {"age": 130.5}},
        {"patient": {"age": "9"}},
        {"patient": {"age": True}},
        {"therapy": {"duration_years": 200}},
        {"therapy": {"duration_years": -0.5}},
        {"therapy": {"line": 0}},
        {"therapy": {"line": 21}},
        {"therapy": {"line": 2.5}},
        {"therapy": {"intent": "weekly"}},
        {"nickname": "x"},
        {"patient": {"age": 9, "sex": "f"}},
        {"conditions": [{"code": "G25.81", "system": "ICD-11"}]},
        {"conditions": [{"code": "G25.81", "system": "ICD-10-CM", "display": "RLS"}]},
        {"conditions": [{"code": -1, "system": "SNOMED-CT"}]},
        {"conditions": [{"code": 10**40, "system": "SNOMED-CT"}]},
        {"conditions": [{"code": 25.81, "system": "ICD-10-CM"}]},
        {"conditions": ["RLS"] * 101},
        {"conditions": ["x" * 201]},
        {"conditions": ["   "]},
        {"conditions": ["panic\x07disorder"]},
        {"conditions": "RLS"},
        {"conditions": None},
        {"id": ""},
        {"id": "case\n"},
        {"id": "x" * 201},
    ],
)
def test_what_the_engine_refuses_the_schema_refuses(scenario: dict[str, Any]):
    assert not accepted(scenario)
    assert not SCENARIO.is_valid(scenario)


@pytest.mark.parametrize(
    "scenario",
    [
        {},
        {"patient": {"age": 0}, "therapy": {"duration_years": 130, "line": 20}},
        {"patient": {"age": 130.0}, "therapy": {"duration_years": 0.5, "line": 1}},
        {"patient": None, "therapy": None, "id": None},
        {"conditions": ["  RLS\t"], "medications": [{"code": " N03AE01 ", "system": "ATC"}]},
        {"conditions": [{"code": 84757009, "system": "SNOMED-CT"}]},
        {"conditions": [{"code": 10**40 - 1, "system": "SNOMED-CT"}]},
        {"id": " case 17 "},
    ],
)
def test_what_the_engine_accepts_the_schema_accepts(scenario: dict[str, Any]):
    assert accepted(scenario)
    assert SCENARIO.is_valid(scenario)


NUMBERS = st.one_of(
    st.integers(min_value=-3, max_value=140),
    st.integers(),
    st.floats(min_value=-2, max_value=135),
    st.floats(allow_nan=False),  # NaN is not JSON; infinities are refused by both
    st.sampled_from([0.0, -0.0, 1.0, 20.0, 130.0, 130.00000000000003, 5e-324, -5e-324]),
    st.none(),
    st.booleans(),
)
# JSON Schema holds 2.0 an integer (a number is a number however written); the engine wants 2 for a
# line. Leave integral floats out for line: the one known disagreement.
LINES = NUMBERS.filter(lambda v: not (isinstance(v, float) and v.is_integer()))


@st.composite
def numeric_scenarios(draw: st.DrawFn) -> dict[str, Any]:
    scenario: dict[str, Any] = {}
    patient = draw(st.fixed_dictionaries({}, optional={"age": NUMBERS}))
    therapy = draw(st.fixed_dictionaries({}, optional={"duration_years": NUMBERS, "line": LINES}))
    if patient or draw(st.booleans()):
        scenario["patient"] = patient
    if therapy or draw(st.booleans()):
        scenario["therapy"] = therapy
    return scenario


@given(numeric_scenarios())
def test_engine_and_schema_agree_on_numeric_ranges(scenario: dict[str, Any]):
    assert accepted(scenario) == SCENARIO.is_valid(scenario), scenario


# characters where labels and ids are decided: white space the engine trims, control characters
# (some of them white space to Python, U+001C-001F, but not trimmed), other spaces, and letters
TRICKY = st.sampled_from(
    list(" \t\n\r\x0b\x0c\x1c\x1f\x00\x07\x7f\x85\x9f\xa0\u2003\u200b\u2028\u3000\ufeffaZ-9é😀")
)


@given(st.text(TRICKY, max_size=12))
def test_engine_and_schema_agree_on_labels_and_ids(text: str):
    for scenario in ({"conditions": [text]}, {"id": text}):
        assert accepted(scenario) == SCENARIO.is_valid(scenario), scenario


# -- results --------------------------------------------------------------------------------------


def test_every_result_of_the_fixture_scenarios_validates(kb: KnowledgeBase):
    checked = 0
    for name, scenario in VALID:
        for background in (False, True):
            result = evaluate(scenario, knowledge_base=kb, include_background=background)
            data = result.model_dump(mode="json")
            errors = [f"{list(e.absolute_path)}: {e.message}" for e in RESULT.iter_errors(data)]
            assert errors == [], name
            checked += 1
    assert checked == 2 * len(VALID)


def test_a_result_the_schema_refuses():
    data = evaluate({"conditions": ["RLS"]}).model_dump(mode="json")
    assert RESULT.is_valid(data)
    del data["knowledge_base"]["digest"]
    assert not RESULT.is_valid(data)


# -- the command ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_caveat_schema_prints_the_docs_copy(name: str):
    proc = caveat("schema", name)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout == (DOCS / f"{name}.json").read_text(encoding="utf-8")
    assert json.loads(proc.stdout) == json_schema(name)


def test_caveat_schema_of_something_else_is_a_usage_error():
    proc = caveat("schema", "bogus")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("usage: caveat schema")
    assert "invalid choice: 'bogus'" in proc.stderr


def test_write_schemas(tmp_path: Path):
    from engine.schemas import write_schemas

    paths = write_schemas(tmp_path)
    assert [p.name for p in paths] == ["scenario.json", "result.json"]
    for name, path in zip(NAMES, paths, strict=True):
        assert path.read_text(encoding="utf-8") == (DOCS / f"{name}.json").read_text()
