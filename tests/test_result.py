"""The output contract: statements with caveats, quotes and reasons; undetermined, not covered and
unrecognised reported rather than silent; stable order; traceable to the exact pack."""

from __future__ import annotations

import json
import random

from engine import Result, evaluate, load_knowledge_base

FULL = {
    "id": "full",
    "patient": {"age": 9},
    "conditions": [
        {"code": "G40.A09", "system": "ICD-10-CM"},
        "non-convulsive status epilepticus",
        "panic disorder",
        "RLS",
        "insomnia",
        "restles legs",
    ],
    "medications": ["Valium", "phenytoin", "zzz"],
    "therapy": {"intent": "long-term", "line": 1, "response": "transient"},
}


def test_result_fields_and_plain_json():
    result = evaluate(FULL)
    data = result.model_dump(mode="json")
    assert set(data) == {
        "scenario_id",
        "statements",
        "undetermined",
        "not_covered",
        "unrecognized",
        "recognized",
        "background_included",
        "knowledge_base",
    }
    statement = data["statements"][0]
    assert set(statement) == {
        "rule",
        "category",
        "text",
        "caveats",
        "evidence",
        "because",
        "status",
        "reviewed",
    }
    assert set(statement["evidence"]) == {"source", "quote", "basis"}
    assert statement["status"] == "active" and statement["reviewed"] == "2026-11-25"
    caveat = next(s for s in data["statements"] if s["caveats"])["caveats"][0]
    assert set(caveat) == {"code", "label", "text", "support"}
    assert json.loads(json.dumps(data)) == data
    assert Result.model_validate(data) == result


def test_knowledge_base_is_identified_by_content_digest():
    kb = load_knowledge_base()
    ref = evaluate({"conditions": ["RLS"]}).knowledge_base
    assert (ref.id, ref.version, ref.digest) == ("clonazepam", kb.version, kb.digest)
    assert len(ref.digest) == 64


def test_statement_carries_caveats_quote_and_reasons():
    result = evaluate({"conditions": ["RLS"], "therapy": {"line": 1}})
    rls = result.statement("rls-third-line")
    assert [c.code for c in rls.caveats] == ["third-line", "investigational"]
    assert all(c.text for c in rls.caveats)
    assert rls.evidence.quote.startswith("Restless legs syndrome can be treated using clonazepam")
    assert rls.evidence.basis == "investigational"
    early = result.statement("rls-before-third-line")
    assert [(b.fact, b.value, b.test) for b in early.because] == [
        ("conditions", "RLS", "is restless legs syndrome"),
        ("therapy.line", 1, "< 3"),
    ]


def test_missing_facts_make_rules_undetermined_not_false():
    result = evaluate(
        {"conditions": ["epilepsy", "panic disorder"], "therapy": {"intent": "long-term"}}
    )
    undetermined = {u.rule: u.needs for u in result.undetermined}
    assert undetermined["epilepsy-children"] == ["patient.age"]
    assert undetermined["panic-long-term-up-to-three-years"] == ["therapy.duration_years"]
    assert "epilepsy-children" not in result.rules()
    # once given, the same rules are decided
    decided = evaluate(
        {
            "conditions": ["epilepsy", "panic disorder"],
            "patient": {"age": 30},
            "therapy": {"intent": "long-term", "duration_years": 2},
        }
    )
    assert "panic-long-term-up-to-three-years" in decided.rules()
    assert not {u.rule for u in decided.undetermined} & {
        "epilepsy-children",
        "panic-long-term-up-to-three-years",
    }


def test_undetermined_lists_only_the_facts_that_matter():
    result = evaluate({"conditions": ["non-convulsive status epilepticus"]})
    (phenytoin,) = [u for u in result.undetermined if u.rule == "ncse-add-phenytoin"]
    assert phenytoin.needs == ["therapy.response"]
    assert [b.test for b in phenytoin.because] == [
        "is non-convulsive status epilepticus",
        "no medication is phenytoin or a kind of it",
        "every medication listed was recognised, and none could be phenytoin",
    ]


def test_background_statements_only_on_request():
    plain = evaluate({"conditions": ["RLS"]})
    assert not {"class-benzodiazepine", "taken-by-mouth"} & set(plain.rules())
    full = evaluate({"conditions": ["RLS"]}, include_background=True)
    assert {
        "class-benzodiazepine",
        "taken-by-mouth",
        "onset-and-duration",
        "mechanism-gaba",
    } <= set(full.rules())
    assert full.background_included and not plain.background_included
    assert [s for s in full.statements if s.rule in plain.rules()] == plain.statements


def test_statements_are_grouped_by_category_in_pack_order():
    kb = load_knowledge_base()
    result = evaluate(FULL, include_background=True)
    ranks = [list(kb.categories).index(s.category) for s in result.statements]
    assert ranks == sorted(ranks)
    positions = [kb.rule_index[s.rule] for s in result.statements]
    for a, b, ra, rb in zip(positions, positions[1:], ranks, ranks[1:], strict=False):
        assert ra < rb or a < b


def test_shuffled_lists_give_an_identical_result():
    expected = evaluate(FULL)
    rng = random.Random(7)
    for _ in range(20):
        shuffled = json.loads(json.dumps(FULL))
        rng.shuffle(shuffled["conditions"])
        rng.shuffle(shuffled["medications"])
        assert evaluate(shuffled) == expected


def test_silence_is_never_empty_handed():
    result = evaluate(
        {"conditions": ["insomnia", "restles legs", {"code": "I10", "system": "ICD-10-CM"}]}
    )
    assert result.statements == []
    assert [n.input for n in result.not_covered] == ["I10 (ICD-10-CM)", "insomnia"]
    assert [u.input for u in result.unrecognized] == ["restles legs"]


def test_a_scenario_is_evaluated_independently_of_the_previous_one():
    a = {"conditions": ["panic disorder"], "therapy": {"intent": "long-term", "duration_years": 5}}
    b = {"conditions": ["bruxism"]}
    fresh_b = evaluate(b)
    evaluate(a)
    assert evaluate(b) == fresh_b
