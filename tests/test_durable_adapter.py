"""One regression test per durable_rules defect: first the defect itself, reproduced with
durable_rules alone (so a fixed upstream release shows up here), then the adapter living with it.
The numbers follow the list in engine/durable_adapter.py."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap
import threading
import tomllib

import durable_rules_engine as dre
import pytest
from conftest import REPO

from engine import EngineError, ScenarioError, evaluate, load_knowledge_base, synthetic
from engine.durable_adapter import (
    GUARD,
    SENTINEL_RULE,
    DurableRulesets,
    encode_fact,
    limit_problems,
)
from engine.errors import CompileError
from engine.pipeline import run


def fire_raw(rules: dict, facts: list[dict], sid: str = "1") -> tuple[int, list[str]]:
    """Plain durable_rules: create a ruleset, assert facts in one session, drain the actions.
    A sentinel rule is added all the same: without it, defect 1 would crash the test process."""
    rules = {**rules, "sentinel": {"all": [{"m": {"raw": 1}}]}}
    handle = dre.create_ruleset(f"raw-{id(rules)}-{sid}", json.dumps(rules))
    try:
        payload = json.dumps([dict(f, sid=sid, raw=1) for f in facts])
        code, state = dre.assert_facts(handle, payload)
        started = dre.start_action_for_state(handle, state)
        fired, message = [], started[1] if started else None
        while message:
            fired.append(message[2 : message.index('"', 2)])
            message = dre.complete_and_start_action(handle, state)
        dre.delete_state(handle, sid)
        return code, sorted(f for f in fired if f != "sentinel")
    finally:
        dre.delete_ruleset(handle)


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


# 1 ------------------------------------------------------------------------------------------------
def test_1_raw_delete_state_segfaults_when_no_action_ran():
    proc = run_python(
        """
        import json
        import durable.engine  # its import shapes the heap so that the crash shows every time
        import durable_rules_engine as dre
        h = dre.create_ruleset('t', json.dumps(
            {"r": {"all": [{"a": {"t": "x"}}, {"b": {"t": "y"}}]}}))
        for i in range(1000):
            code, state = dre.assert_facts(h, json.dumps([{"sid": "1", "id": "1", "t": "x"}]))
            dre.start_action_for_state(h, state)
            dre.delete_state(h, "1")
        print("survived")
        """
    )
    assert proc.returncode == -11 and "survived" not in proc.stdout


def test_1_adapter_survives_evaluations_in_which_no_rule_fires():
    proc = run_python(
        """
        import durable.engine
        from engine import evaluate
        for i in range(1000):
            r = evaluate({"conditions": ["insomnia"], "medications": ["phenytoin"]})
            assert r.statements == [] and r.undetermined == []
        print("survived")
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert "survived" in proc.stdout


def test_1_every_compiled_ruleset_has_the_sentinel(kb):
    rulesets = kb.matcher.rulesets
    assert rulesets.fire({}) == []  # only the sentinel fired, and it is not reported
    for definition in kb.program.rulesets:
        assert SENTINEL_RULE not in definition  # added by the adapter, never by the compiler


# 2 ------------------------------------------------------------------------------------------------
def test_2_raw_not_patterns_depend_on_assertion_order():
    rules = {"r": {"all": [{"a": {"t": "x"}}, {"b$not": {"t": "y"}}]}}
    # the same two facts; only their order differs
    assert fire_raw(rules, [{"id": 1, "t": "y"}, {"id": 2, "t": "x"}])[1] == []
    assert fire_raw(rules, [{"id": 2, "t": "x"}, {"id": 1, "t": "y"}])[1] == ["r"]


def test_2_adapter_emits_no_not_patterns_and_absence_ignores_order(kb):
    for definition in kb.program.rulesets:
        assert "$not" not in json.dumps(definition)
    base = {"conditions": ["NCSE"], "therapy": {"response": "transient"}}
    for meds in (["phenytoin", "Valium"], ["Valium", "phenytoin"]):
        assert "ncse-add-phenytoin" not in evaluate({**base, "medications": meds}).rules()
    assert "ncse-add-phenytoin" in evaluate({**base, "medications": ["Valium"]}).rules()


# 3 ------------------------------------------------------------------------------------------------
def test_3_raw_host_raises_when_a_fact_matches_nothing():
    from durable.engine import Host, MessageNotHandledException

    class QuietHost(Host):
        def _run(self) -> None:  # no background threads in a test
            pass

    host = QuietHost()
    host.register_rulesets({"d3": {"r": {"all": [{"m": {"t": "x"}}], "run": lambda c: None}}})
    with pytest.raises(MessageNotHandledException):
        host.assert_facts("d3", [{"sid": "1", "id": 1, "t": "nothing matches this"}])


def test_3_adapter_handles_facts_that_match_no_rule():
    rulesets = DurableRulesets([{"0": {"all": [{"m": {"t": "x"}}]}}], "d3")
    assert rulesets.fire({"t": "nothing matches this"}) == []
    assert rulesets.fire({"t": "x"}) == ["0"]


# 4 ------------------------------------------------------------------------------------------------
def test_4_raw_more_than_64_pending_nodes_fails_at_assert_time():
    rules = {f"r{i}": {"all": [{"m": {f"c{i}": True}}]} for i in range(100)}
    with pytest.raises(dre.error, match="303"):
        fire_raw(rules, [{"id": 1, **{f"c{i}": True for i in range(70)}}])


def test_4_limits_are_checked_and_a_large_pack_is_split():
    flat = [{f"c{i}": True} for i in range(100)]
    assert any("stack" in p for p in limit_problems(flat))
    assert limit_problems(flat[:40]) == []
    kb = synthetic.pack(seed=11, n_rules=300)
    assert len(kb.program.rulesets) > 1
    for definition in kb.program.rulesets:
        exprs = [rule["all"][0]["m"] for rule in definition.values()]
        assert limit_problems(exprs) == []
    # a scenario with every concept still evaluates, and agrees with the reference
    every = {
        "conditions": [c.label for c in kb.vocabulary.concepts.values() if c.kind == "condition"][
            :100
        ],
        "patient": {"age": 10},
        "therapy": {"line": 2, "intent": "acute"},
    }
    assert run(kb, every) == run(kb, every, matcher="reference")


def test_4_a_rule_too_big_for_one_ruleset_is_spread_over_several():
    # 70 alternatives branch from one node: more than durable_rules can hold on its stack, so
    # the rule's alternatives (each a durable_rules rule of its own) go to several rulesets
    def huge(rng, conditions, drugs):
        return {
            "any": [
                {"all": [{"condition": c}, {"condition": d}]}
                for c, d in itertools.pairwise(conditions[:71])
            ]
        }

    kb = synthetic.pack(seed=3, n_rules=1, n_conditions=80, when=huge)
    assert len(kb.program.rulesets) > 1
    for definition in kb.program.rulesets:
        assert limit_problems([rule["all"][0]["m"] for rule in definition.values()]) == []
    labels = [c.label for c in kb.vocabulary.concepts.values() if c.kind == "condition"]
    for pair in ([labels[0], labels[1]], [labels[68], labels[69]], [labels[5]], []):
        scenario = {"conditions": pair}
        assert run(kb, scenario) == run(kb, scenario, matcher="reference")
    assert run(kb, {"conditions": labels[68:70]}).rules() == ["rule-0"]


def test_4_a_rule_with_too_many_unknown_alternatives_is_refused_clearly():
    # each alternative rests on an absence, unknown while a condition is unrecognised
    def huge(rng, conditions, drugs):
        return {
            "any": [
                {"all": [{"condition": c}, {"not": {"condition": d}}]}
                for c in conditions[:70]
                for d in conditions[70:71]
            ]
        }

    with pytest.raises(CompileError, match="70 children of one all/any can be unknown"):
        synthetic.pack(seed=3, n_rules=1, n_conditions=80, when=huge)


def test_4_a_fact_with_too_many_properties_is_refused():
    rulesets = DurableRulesets([{"0": {"all": [{"m": {"a": 1}}]}}], "d4")
    with pytest.raises(EngineError, match="limit"):
        rulesets.fire({f"p{i}": True for i in range(300)})
    assert rulesets.fire({"a": 1}) == ["0"]  # and the session was cleaned up


# 5 ------------------------------------------------------------------------------------------------
def test_5_raw_the_same_fact_twice_in_a_session_is_dropped():
    handle = dre.create_ruleset("d5", json.dumps({"r": {"all": [{"m": {"t": "x"}}]}}))
    try:
        fact = json.dumps([{"sid": "1", "id": 1, "t": "x"}])
        assert dre.assert_facts(handle, fact)[0] == 0
        assert dre.assert_facts(handle, fact)[0] == 2  # observed already: silently dropped
    finally:
        dre.delete_ruleset(handle)


def test_5_adapter_repeats_the_same_scenario_faithfully():
    scenario = {"conditions": ["RLS"], "therapy": {"line": 1}}
    first = evaluate(scenario)
    for _ in range(50):
        assert evaluate(scenario) == first
    # nothing is left in the session between evaluations
    for handle in load_knowledge_base().matcher.rulesets._handles:
        assert json.loads(dre.get_facts(handle, "1")) == []


def test_5_a_failed_evaluation_starts_the_next_from_a_new_session():
    # built by hand past durable_rules' stack limit (the compiler would have split it)
    rulesets = DurableRulesets(
        [{str(i): {"all": [{"m": {f"c{i}": True}}]} for i in range(100)}], "d5"
    )
    with pytest.raises(EngineError, match="303"):
        rulesets.fire({f"c{i}": True for i in range(80)})  # fails half-way through matching
    assert rulesets.fire({"c1": True}) == ["1"]
    assert rulesets.fire({"c2": True}) == ["2"]


def test_5_evaluations_that_fail_part_way_again_and_again_never_crash_the_process():
    """Clearing a session after a failed assert is defect 1 again (no action ran in it): the
    adapter once did, and the 2nd to 30th failure crashed the process (free(): invalid pointer)
    in the middle of the test suite. A failed ruleset is now abandoned and made anew."""
    proc = run_python(
        """
        from engine.durable_adapter import DurableRulesets
        from engine.errors import EngineError
        for rep in range(30):
            rulesets = DurableRulesets(
                [{str(i): {"all": [{"m": {f"c{i}": True}}]} for i in range(100)}], "d5"
            )
            for _ in range(3):
                try:
                    rulesets.fire({f"c{i}": True for i in range(80)})
                except EngineError as exc:
                    assert "303" in str(exc)
                assert rulesets.fire({"c1": True}) == ["1"]
        print("held")
        """
    )
    assert proc.returncode == 0, proc.stderr[-500:]
    assert proc.stdout.strip() == "held"


# 6 ------------------------------------------------------------------------------------------------
def test_6_raw_exceptions_in_actions_are_swallowed_into_the_state():
    from durable.engine import Host

    class QuietHost(Host):
        def _run(self) -> None:
            pass

    ran = []

    def boom(c):
        raise RuntimeError("boom")

    host = QuietHost()
    host.register_rulesets(
        {
            "d6": {
                "a": {"all": [{"m": {"t": "x"}}], "run": boom},
                "b": {"all": [{"m": {"t": "x"}}], "run": lambda c: ran.append(1)},
            }
        }
    )
    state = host.assert_fact("d6", {"sid": "1", "id": 1, "t": "x"})  # no exception raised
    assert "boom" in state["exception"] and ran == [1]


def test_6_adapter_runs_no_python_action_and_raises_durable_failures():
    with pytest.raises(EngineError, match="refused a compiled ruleset"):
        DurableRulesets([{"0": {"all": [{"m": {"$nosuchop": {"a": 1}}}]}}], "d6")
    kb = load_knowledge_base()
    for definition in kb.program.rulesets:
        assert all(set(rule) == {"all"} for rule in definition.values())


# 7 ------------------------------------------------------------------------------------------------
def test_7_raw_comparisons_are_loosely_typed():
    rules = {"r": {"all": [{"m": {"$lt": {"age": 30}}}]}}
    assert fire_raw(rules, [{"id": 1, "age": "25"}])[1] == ["r"]
    assert fire_raw(rules, [{"id": 1, "age": True}])[1] == ["r"]


def test_7_adapter_never_sees_a_loosely_typed_value():
    for age in ("25", True):
        with pytest.raises(ScenarioError):
            evaluate({"conditions": ["epilepsy"], "patient": {"age": age}})


# 8 ------------------------------------------------------------------------------------------------
def test_8_python_3_13_is_excluded():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11,<3.13"
    assert sys.version_info[:2] in ((3, 11), (3, 12))


# 9 ------------------------------------------------------------------------------------------------
def test_9_raw_the_session_state_is_matched_as_a_fact():
    rules = {"r": {"all": [{"m": {"$nex": {"x": 1}}}]}}
    # the only asserted fact HAS x, yet the absence rule fires: on the session's state object
    assert fire_raw(rules, [{"id": 1, "x": 5}])[1] == ["r"]


def test_9_adapter_guards_every_pattern_with_the_scenario_marker():
    rulesets = DurableRulesets([{"0": {"all": [{"m": {"$nex": {"x": 1}}}]}}], "d9")
    assert rulesets.fire({"x": 5}) == []
    assert rulesets.fire({}) == ["0"]
    assert GUARD == {"scn": 1}


# threads ------------------------------------------------------------------------------------------
def test_raw_host_starts_background_threads_and_the_adapter_does_not():
    from durable.engine import Host

    before = threading.active_count()
    load_knowledge_base()
    synthetic.pack(seed=1, n_rules=20)
    assert threading.active_count() == before
    Host()  # the stock host starts its dispatch and timer threads
    assert threading.active_count() > before


# 10 -----------------------------------------------------------------------------------------------
def test_10_raw_exponent_without_decimal_point_crashes_the_parser():
    proc = run_python(
        """
        import json
        import durable_rules_engine as dre
        h = dre.create_ruleset('t', json.dumps({"r": {"all": [{"m": {"$lt": {"d": 3}}}]}}))
        for value in ("0.5", "1.0e-05", "1e-05"):
            payload = '[{"sid": "1", "id": "1", "d": %s}]' % value
            code, state = dre.assert_facts(h, payload)
            dre.start_action_for_state(h, state)
            dre.delete_state(h, "1")
            print(value, flush=True)
        """
    )
    assert proc.stdout.split() == ["0.5", "1.0e-05"]  # the third value kills the process
    assert proc.returncode != 0


def test_10_adapter_writes_floats_durable_rules_can_read():
    assert encode_fact({"d": 1e-05, "e": 1e16, "f": 2.5, "b": True, "i": 3}) == (
        '[{"sid":"1","id":"f","scn":1,"d":1.0e-05,"e":1.0e+16,"f":2.5,"b":true,"i":3}]'
    )
    rulesets = DurableRulesets([{"0": {"all": [{"m": {"$lt": {"d": 3}}}]}}], "d10")
    for value, fires in ((1e-05, True), (1e-300, True), (2.9999999999999996, True), (3.0, False)):
        assert (rulesets.fire({"d": value}) == ["0"]) is fires
    scenario = {"conditions": ["panic disorder"], "therapy": {"duration_years": 1e-05}}
    assert run(load_knowledge_base(), scenario) == run(
        load_knowledge_base(), scenario, matcher="reference"
    )
