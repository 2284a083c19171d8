"""One test per claim: for every rule, the case library holds a scenario that must produce its
statement (with its caveats and its quote) and a near miss that must not."""

from __future__ import annotations

import pytest
from conftest import CASES

from engine import evaluate, load_knowledge_base
from engine.casefiles import read_cases
from engine.cases import run_case, split_case

KB = load_knowledge_base()
ENTRIES = list(read_cases([CASES]))
LIBRARY = [split_case(e.data, e.name) for e in ENTRIES if e.error is None]
CONDITIONAL = [r.id for r in KB.rules if not r.background]
BACKGROUND = [r.id for r in KB.rules if r.background]


def test_the_library_is_substantial():
    assert len(LIBRARY) >= 60
    names = [c.name for c in LIBRARY]
    assert len(names) == len(set(names)), "case ids are unique"
    assert all(c.expect is not None and c.description for c in LIBRARY)


@pytest.mark.parametrize("rule_id", CONDITIONAL)
def test_claim(rule_id: str):
    rule = KB.rule(rule_id)
    source = KB.sources[rule.evidence.source]
    applying = [c for c in LIBRARY if c.expect and rule_id in c.expect.applies]
    near_misses = [c for c in LIBRARY if c.expect and rule_id in c.expect.not_applies]
    assert applying, f"no case where {rule_id} applies"
    assert near_misses, f"no near-miss case where {rule_id} must not apply"
    for case in applying:
        statement = evaluate(case.scenario).statement(rule_id)
        assert statement is not None, case.name
        assert statement.text == rule.statement
        assert [c.code for c in statement.caveats] == rule.caveat_codes
        for note, use in zip(statement.caveats, rule.caveats, strict=True):
            # every caveat comes with the words of the source that put it there
            assert note.support == use.support and source.find(note.support) >= 0
            assert note.text == KB.caveats[note.code].meaning
        assert statement.evidence.quote == rule.evidence.quote
        assert statement.evidence.quote in source.text
        assert statement.because, "a statement says which facts made it apply"
    for case in near_misses:
        assert rule_id not in evaluate(case.scenario).rules(), case.name


@pytest.mark.parametrize("rule_id", BACKGROUND)
def test_background_claim(rule_id: str):
    for scenario in ({}, {"conditions": ["RLS"], "patient": {"age": 40}}):
        assert rule_id in evaluate(scenario, include_background=True).rules()
        assert rule_id not in evaluate(scenario).rules()


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_library_case(entry):
    outcome = run_case(KB, entry)
    assert outcome.status == "pass", outcome.problems
