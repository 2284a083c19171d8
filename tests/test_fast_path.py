"""The fast path gives what the plain path gives (issue 12).

The plain path is the pipeline as it was: pydantic validates the scenario and every model of the
result, nothing is remembered between evaluations, the fact is written afresh for durable_rules,
and a batch record is written by json and pydantic. The fast path checks the common scenario in
plain Python, remembers readings and durable_rules' answers, builds models without validating
them again and writes JSON with orjson. Both must give equal results, equal errors and equal
bytes, which is what these tests hold them to.
"""

from __future__ import annotations

import gc
import json
import math
import random
from pathlib import Path

import pytest
from conftest import CASES
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import ScenarioError, load_knowledge_base, synthetic
from engine.batch import run_chunks
from engine.casefiles import CaseEntry, read_cases
from engine.cases import split_case
from engine.jsonfile import UNSURE, parse_json, parse_json_quickly
from engine.jsontext import dumps
from engine.pipeline import run
from engine.scenario import checked, parse_scenario
from engine.yamlfile import YamlProblem

KB = load_knowledge_base()


def outcome(scenario, plain, **options):
    """The result's model_dump, or the problems of its refusal."""
    try:
        return run(KB, scenario, plain=plain, **options).model_dump()
    except ScenarioError as exc:
        return ("refused", [str(p) for p in exc.problems])


def fixture_scenarios() -> list[dict]:
    found = []
    for entry in read_cases([CASES]):
        if entry.error is None and isinstance(entry.data, dict):
            try:
                found.append(split_case(entry.data, entry.name).scenario)
            except ScenarioError:
                continue
    return found


FIXTURES = fixture_scenarios()


def test_the_case_library_gives_equal_results_on_both_paths():
    assert len(FIXTURES) > 100
    for scenario in FIXTURES:
        for options in ({}, {"include_background": True}, {"include_draft": True}):
            assert outcome(scenario, False, **options) == outcome(scenario, True, **options), (
                scenario,
                options,
            )


@pytest.mark.parametrize("seed", range(4))
def test_generated_scenarios_give_equal_results_on_both_paths(seed):
    rng = random.Random(seed)
    for i in range(500):
        scenario = synthetic.scenario(rng, KB, unknown=0.3)
        options = {"include_background": i % 3 == 0, "include_draft": i % 5 == 0}
        assert outcome(scenario, False, **options) == outcome(scenario, True, **options), scenario


def test_the_json_of_a_result_is_pydantics_byte_for_byte():
    rng = random.Random(11)
    scenarios = FIXTURES + [synthetic.scenario(rng, KB, unknown=0.3) for _ in range(500)]
    scenarios.append({"patient": {"age": 0.00001}, "therapy": {"duration_years": 2.5e-7}})
    scenarios.append({"id": "x\u2028\x7f é 😀", "conditions": ["épilepsie", "a\tb"]})
    written = 0
    for scenario in scenarios:
        try:
            result = run(KB, scenario)
        except ScenarioError:
            continue
        assert dumps(result, KB) == result.model_dump_json().encode()
        assert dumps(result) == result.model_dump_json().encode()  # (no pack's fragments)
        written += 1
    assert written > 500


# -- the scenario check ---------------------------------------------------------------------

texts = st.one_of(
    st.sampled_from(["panic disorder", " RLS ", "G40.A09", "", " ", "x" * 200, "x" * 201]),
    st.text(
        alphabet=st.sampled_from(
            [
                "a",
                " ",
                "\t",
                "\n",
                "\x1c",
                "\x1f",
                "\x85",
                "\xa0",
                "\u2003",
                "\u3000",
                "\ufeff",
                "\u200b",
                "\ud800",
                "\x00",
                "\x7f",
                "é",
                ":",
            ]
        ),
        max_size=8,
    ),
)
numbers = st.one_of(
    st.integers(-5, 200),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([True, False, None, "9", 1.5, -0.0, 130, 130.0, 130.5, 10**50]),
)
codes = st.fixed_dictionaries(
    {
        "code": st.one_of(texts, st.integers(-1, 10**41), st.sampled_from([True, 3.5, None])),
        "system": st.sampled_from(["ICD-10-CM", "ATC", "RxNorm", "SNOMED-CT", "icd", 1, None]),
    },
    optional={"display": st.just("x")},
)
items = st.one_of(texts, codes, numbers, st.lists(texts, max_size=1), st.just({"code": "x"}))
item_lists = st.one_of(
    st.lists(items, max_size=4),
    st.lists(items, max_size=2).map(tuple),
    st.sampled_from(["headache", None, 5, {"a": 1}, ["x"] * 101]),
)
patients = st.one_of(
    st.none(),
    st.fixed_dictionaries({}, optional={"age": numbers, "sex": st.just("f")}),
    st.sampled_from([[], "9", 9]),
)
therapies = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "intent": st.sampled_from(["acute", "short-term", "long-term", "Acute", 1, None]),
            "duration_years": numbers,
            "line": numbers,
            "dose": st.sampled_from(["low", "standard", "high", "huge", None]),
            "response": st.sampled_from(["none", "transient", "sustained", "", None]),
            "other": st.just(1),
        },
    ),
    st.sampled_from([[], "long-term"]),
)
scenarios = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(texts, st.integers(), st.none()),
        "patient": patients,
        "conditions": item_lists,
        "medications": item_lists,
        "therapy": therapies,
        "extra": st.just(1),
    },
)


def parsed(data, plain):
    try:
        return parse_scenario(data, plain=plain).model_dump()
    except ScenarioError as exc:
        return ("refused", [str(p) for p in exc.problems])


@settings(max_examples=1500)
@given(scenarios)
def test_the_plain_python_check_accepts_only_what_pydantic_accepts_and_as_it_reads_it(data):
    assert parsed(data, False) == parsed(data, True)
    fast = checked(data)
    if fast is not None:  # then pydantic agrees it is valid, and reads it the same
        assert fast.model_dump() == parse_scenario(data, plain=True).model_dump()


def test_the_check_leaves_what_is_not_a_plain_dict_to_pydantic():
    from collections import OrderedDict

    assert checked(OrderedDict(conditions=["RLS"])) is None
    assert checked({"conditions": ["RLS"], 1: 2}) is None
    assert parse_scenario(OrderedDict(conditions=["RLS"])).conditions == ["RLS"]
    assert checked({"conditions": [" RLS "]}).conditions == ["RLS"]
    assert (
        checked({"conditions": [{"code": 84757009, "system": "SNOMED-CT"}]}).conditions[0].code
        == "84757009"
    )
    assert checked({"patient": {"age": math.inf}}) is None


# -- JSON in --------------------------------------------------------------------------------


def strict(text: bytes):
    try:
        return ("ok", parse_json(text.decode("utf-8")))
    except (YamlProblem, UnicodeDecodeError) as exc:
        return ("refused", str(exc))


json_texts = st.one_of(
    st.recursive(
        st.one_of(st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=5), st.none()),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
        ),
        max_leaves=12,
    ).map(lambda v: json.dumps(v).encode()),
    st.sampled_from(
        [
            b'{"a": 1, "a": 2}',
            b'{"a": {"b": 1, "b": 1}}',
            b'{"a": "10:30", "a": 1}',
            b'{"a":NaN}',
            b'{"a":"\\ud800"}',
            b'{"code": 123456789012345678901234567890}',
            b'{"a": -9223372036854775809}',
            b"\xef\xbb\xbf{}",
            b"[" * 70 + b"]" * 70,
            b'{"a": 1e400}',
            b"{\xff}",
            b'{"a" : 1 , "b":[1,2]}',
        ]
    ),
)


@settings(max_examples=800)
@given(json_texts)
def test_orjson_reads_a_record_only_where_the_strict_reader_would_read_it_the_same(text):
    quick = parse_json_quickly(text)
    if quick is UNSURE:
        return
    assert strict(text) == ("ok", quick)
    assert quick == json.loads(text) or quick != quick  # (NaN aside: never reached, see above)


def test_a_duplicate_key_is_never_read_past():
    for text in (b'{"a": 1, "a": 2}', b'[{"x": {"k": 1, "k": 2}}]', b'{"a": "b:c", "a": 1}'):
        assert parse_json_quickly(text) is UNSURE
        assert strict(text)[0] == "refused"


# -- batch output ---------------------------------------------------------------------------


def batch_bytes(tmp_path: Path, plain: bool, workers: int) -> bytes:
    source = tmp_path / "cases.jsonl"
    out = b"".join(
        chunk.text if chunk.text is not None else Path(chunk.spool[0]).read_bytes()
        for chunk in run_chunks(
            read_cases([source, CASES], parse_json_lines=False),
            kb=KB,
            workers=workers,
            output="lines",
            plain=plain,
        )
    )
    return out


def test_a_batch_writes_the_same_bytes_on_both_paths(tmp_path):
    rng = random.Random(3)
    lines = [
        json.dumps({"id": f"g{i}", **synthetic.scenario(rng, KB, unknown=0.2)}) for i in range(300)
    ]
    lines += [
        '{"id": "dup", "conditions": ["RLS"], "conditions": []}',
        '{"id": "colon", "description": "at 10:30", "conditions": ["RLS"]}',
        '{"id": "big", "conditions": [{"code": 123456789012345678901234567890, "system": "RxNorm"}]}',  # noqa: E501
        '{"id": "bad", "patient": {"age": "9"}}',
        "not json",
        '{"id": "nan", "patient": {"age": NaN}}',
        '{"id": "ctl\\u0001", "conditions": ["x"]}',
        '{"conditions": ["\\u00e9pilepsie"], "expect": {"applies": ["indication-seizures"]}}',
    ]
    (tmp_path / "cases.jsonl").write_text("\n".join(lines) + "\n")
    fast = batch_bytes(tmp_path, plain=False, workers=1)
    assert fast == batch_bytes(tmp_path, plain=True, workers=1)
    assert fast == batch_bytes(tmp_path, plain=False, workers=2)
    records = [json.loads(line) for line in fast.splitlines()]
    assert len(records) == len(lines) + sum(1 for _ in read_cases([CASES]))
    mine = [r for r in records if r["path"] == str(tmp_path / "cases.jsonl")]
    assert "duplicate key" in mine[300]["problems"][0]
    assert mine[301]["status"] == "evaluated"  # (a colon inside a string: the strict reader)
    assert mine[302]["status"] == "evaluated"  # (an integer past 64 bits, read as one)
    assert mine[302]["result"]["unrecognized"][0]["input"].startswith(
        "123456789012345678901234567890"
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_a_batch_sets_the_collector_back(workers):
    before = gc.get_threshold(), gc.get_freeze_count()
    cases = [{"conditions": ["RLS"]}] * 200
    chunks = run_chunks(cases, kb=KB, workers=workers, output="records")
    sizes = []
    for chunk in chunks:
        assert gc.get_threshold()[0] >= 20_000  # (while the batch runs)
        sizes.append(chunk.size)
    assert sum(sizes) == 200
    assert (gc.get_threshold(), gc.get_freeze_count()) == before


# -- the answer cache -----------------------------------------------------------------------


def test_the_answer_cache_serves_a_fact_seen_before_and_stays_within_its_bound():
    kb = load_knowledge_base(str(Path(KB.root)))
    matcher = kb.matcher
    matcher.set_answer_cache(3)
    scenarios = [{"patient": {"age": age}, "conditions": ["seizures"]} for age in range(6)]
    first = [run(kb, s).model_dump() for s in scenarios]
    assert (matcher.hits, matcher.misses) == (0, 6)
    assert len(matcher._answers) == 3
    again = [run(kb, s).model_dump() for s in scenarios[3:]]
    assert (matcher.hits, matcher.misses) == (3, 6)
    assert again == first[3:]
    matcher.set_answer_cache(0)
    assert [run(kb, s).model_dump() for s in scenarios] == first
    assert (matcher.hits, matcher.misses, len(matcher._answers)) == (0, 0, 0)


def test_the_fact_text_is_the_same_whatever_order_its_concepts_come_in():
    a = run(KB, {"conditions": ["seizures", "panic disorder", "RLS"]})
    b = run(KB, {"conditions": ["RLS", "panic disorder", "seizures"]})
    assert a.model_dump() == b.model_dump()
    from engine.facts import normalise

    one = normalise(
        parse_scenario({"conditions": ["seizures", "panic disorder", "RLS"]}), KB.vocabulary
    )
    two = normalise(
        parse_scenario({"conditions": ["RLS", "seizures", "panic disorder"]}), KB.vocabulary
    )
    assert KB.program.encoded(one, False) == KB.program.encoded(two, False)


def test_a_result_from_the_fast_path_does_not_share_its_lists_with_the_pack():
    scenario = {"conditions": ["panic disorder"], "therapy": {"duration_years": 5}}
    result = run(KB, scenario)
    assert any(s.caveats for s in result.statements)
    for statement in result.statements:
        statement.caveats.clear()  # a caller's own business: the pack must not notice
        statement.because.clear()
    assert run(KB, scenario).model_dump() == run(KB, scenario, plain=True).model_dump()
    assert any(s.caveats for s in run(KB, scenario).statements)


def test_case_entry_error_paths_agree(tmp_path):
    entry = CaseEntry(path="x.jsonl", index=0, line=1, data=b'{"a": 1, "a": 2}', raw=True)
    from engine.cases import run_case

    assert run_case(KB, entry).model_dump() == run_case(KB, entry, plain=True).model_dump()


# -- start-up ---------------------------------------------------------------------------------

LAZY = """
import sys
import engine
assert "engine.pipeline" not in sys.modules and "pydantic" not in sys.modules, sorted(sys.modules)
import engine.cases  # (imports the pipeline module before any name is asked of the package)
from engine import KnowledgeBase, Result, evaluate, evaluate_many, parse_scenario
assert evaluate.__module__ == "engine.pipeline" and callable(evaluate), evaluate
assert evaluate({"conditions": ["RLS"]}).statements
assert sorted(engine.__all__) == sorted(n for n in dir(engine) if n in engine.__all__)
try:
    engine.nothing
except AttributeError as exc:
    assert "nothing" in str(exc)
else:
    raise AssertionError("engine.nothing")
print("ok")
"""


def test_import_engine_is_lazy_and_every_name_is_what_it_says():
    import subprocess
    import sys

    import engine

    proc = subprocess.run([sys.executable, "-c", LAZY], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout) == (0, "ok\n"), proc.stderr
    # a submodule named as a lazy name would hide it once imported (engine.evaluate did)
    package = Path(engine.__file__).parent
    assert not [n for n in engine.__all__ if (package / f"{n}.py").exists()]
