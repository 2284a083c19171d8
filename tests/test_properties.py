"""Properties over generated scenarios and generated packs.

The durable_rules engine is held to the reference evaluator (engine/reference.py), which shares no
matching code with the compiler: same rules applied, same rules undetermined, same reasons.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import KnowledgeBase, ScenarioError, evaluate, load_knowledge_base, synthetic
from engine.pipeline import run

KB = load_knowledge_base()
NAMES = sorted({n for c in KB.vocabulary.concepts.values() for n in (c.label, *c.synonyms)})
CONDITION_NAMES = [
    n
    for n in NAMES
    if KB.vocabulary.lookup_text(n).concept
    in {c.id for c in KB.vocabulary.concepts.values() if c.kind == "condition"}
]
DRUG_NAMES = [n for n in NAMES if n not in CONDITION_NAMES]
ICD = [
    "G40.A09",
    "G40A09",
    "G40.812",
    "F41.0",
    "F40.01",
    "F40.11",
    "F41.1",
    "F41.9",
    "G47.52",
    "G47.63",
    "G25.71",
    "F30.10",
    "F30.3",
    "G25.3",
    "G25.81",
    "G40.909",
    "R56.9",
    "I10",
    "G47.00",
    "F31.9",
    "G40.A99",
    "Z99.999",
]


def casing(text: str) -> st.SearchStrategy[str]:
    return st.sampled_from([text, text.upper(), text.lower(), f" {text}  "])


condition_item = st.one_of(
    st.sampled_from(CONDITION_NAMES).flatmap(casing),
    st.sampled_from(ICD).map(lambda c: {"code": c, "system": "ICD-10-CM"}),
    st.sampled_from(["restles legs", "panic disordr", "headache", "Valium"]),
)
drug_item = st.one_of(
    st.sampled_from(DRUG_NAMES).flatmap(casing),
    st.sampled_from(["N03AB02", "N05BA01", "N03AE01"]).map(lambda c: {"code": c, "system": "ATC"}),
    st.sampled_from(["aspirin", "Xanaks"]),
)
ages = st.one_of(
    st.integers(0, 130), st.sampled_from([17, 17.99, 18, 18.0]), st.floats(0, 130, allow_nan=False)
)
therapies = st.fixed_dictionaries(
    {},
    optional={
        "intent": st.sampled_from(["acute", "short-term", "long-term"]),
        "duration_years": st.one_of(st.sampled_from([2, 3, 3.0, 3.01, 5]), st.floats(0, 130)),
        "line": st.integers(1, 20),
        "dose": st.sampled_from(["low", "standard", "high"]),
        "response": st.sampled_from(["none", "transient", "sustained"]),
    },
)
scenarios = st.fixed_dictionaries(
    {},
    optional={
        # an id is one line of printable text (control characters are refused, tested apart)
        "id": st.text(st.characters(exclude_categories=["Cc", "Cs"]), min_size=1, max_size=8),
        "patient": st.fixed_dictionaries({}, optional={"age": ages}),
        "conditions": st.lists(condition_item, max_size=6),
        "medications": st.lists(drug_item, max_size=4),
        "therapy": therapies,
    },
)
junk = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
mangled = st.one_of(
    junk,
    scenarios,
    st.tuples(
        scenarios,
        st.sampled_from(["id", "patient", "conditions", "medications", "therapy", "extra"]),
        junk,
    ).map(lambda t: {**t[0], t[1]: t[2]}),
    st.tuples(therapies, st.sampled_from(["intent", "line", "dose", "duration_years"]), junk).map(
        lambda t: {"therapy": {**t[0], t[1]: t[2]}}
    ),
)


@settings(max_examples=400)
@given(mangled)
def test_any_input_evaluates_or_raises_scenario_error(data):
    try:
        result = evaluate(data)
    except ScenarioError as exc:
        assert exc.problems and all(p.message for p in exc.problems)
    else:
        assert result.knowledge_base.digest == KB.digest


@settings(max_examples=200)
@given(scenarios, st.randoms(use_true_random=False))
def test_shuffling_lists_does_not_change_the_result(scenario, rnd):
    expected = evaluate(scenario)
    shuffled = {**scenario}
    for key in ("conditions", "medications"):
        if key in shuffled:
            items = list(shuffled[key])
            rnd.shuffle(items)
            shuffled[key] = items
    assert evaluate(shuffled) == expected


FRESH = KnowledgeBase.load()


@settings(max_examples=150)
@given(scenarios, scenarios)
def test_a_previous_evaluation_leaves_nothing_behind(a, b):
    evaluate(a, include_background=True)
    assert evaluate(b) == evaluate(b, knowledge_base=FRESH)


def test_eight_threads_agree_with_one():
    rng = random.Random(5)
    cases = [synthetic.scenario(rng, KB) for _ in range(400)]
    cases += [
        {
            "conditions": [n],
            "patient": {"age": rng.randint(0, 90)},
            "therapy": {
                "intent": rng.choice(["acute", "long-term"]),
                "duration_years": rng.randint(0, 6),
            },
        }
        for n in CONDITION_NAMES
    ]
    expected = [evaluate(c, include_background=i % 3 == 0) for i, c in enumerate(cases)]
    with ThreadPoolExecutor(8) as executor:
        for _ in range(3):
            got = list(
                executor.map(
                    lambda ic: evaluate(ic[1], include_background=ic[0] % 3 == 0), enumerate(cases)
                )
            )
            assert got == expected


@settings(max_examples=3000)
@given(scenarios, st.booleans())
def test_engine_agrees_with_reference_on_the_real_pack(scenario, background):
    assert run(KB, scenario, include_background=background) == run(
        KB, scenario, include_background=background, matcher="reference"
    )


@pytest.mark.parametrize("seed,n_rules", [(1, 30), (2, 60), (3, 120), (4, 250), (5, 40), (6, 80)])
def test_engine_agrees_with_reference_on_generated_packs(seed: int, n_rules: int):
    kb = synthetic.pack(seed, n_rules)
    rng = random.Random(seed)
    for i in range(600):
        scenario = synthetic.scenario(rng, kb)
        background = i % 2 == 0
        durable = run(kb, scenario, include_background=background)
        reference = run(kb, scenario, include_background=background, matcher="reference")
        assert durable == reference, scenario


@settings(max_examples=60)
@given(st.integers(0, 10_000), st.integers(5, 40))
def test_engine_agrees_with_reference_on_random_packs(seed: int, n_rules: int):
    kb = synthetic.pack(seed, n_rules)
    rng = random.Random(seed)
    for _ in range(50):
        scenario = synthetic.scenario(rng, kb)
        assert run(kb, scenario) == run(kb, scenario, matcher="reference")


def test_two_packs_side_by_side():
    small = synthetic.pack(9, 20)
    scenario = {"conditions": ["panic disorder", "RLS"], "therapy": {"line": 3}}
    before = evaluate(scenario)
    generated = synthetic.scenario(random.Random(9), small)
    on_small = run(small, generated)
    assert evaluate(scenario) == before
    assert run(small, generated) == on_small
    assert on_small.knowledge_base.id == "generated-9" and before.knowledge_base.id == "clonazepam"


def test_a_pack_of_a_thousand_rules_agrees_with_the_reference():
    kb = synthetic.pack(seed=1000, n_rules=1000)
    assert len(kb.rules) == 1000 and len(kb.program.rulesets) > 1
    rng = random.Random(1000)
    for i in range(300):
        scenario = synthetic.scenario(rng, kb, max_items=8)
        assert run(kb, scenario, include_background=i % 3 == 0) == run(
            kb, scenario, include_background=i % 3 == 0, matcher="reference"
        ), scenario


def test_scale_packs_fire_exactly_what_the_small_pack_fires():
    small = synthetic.pack(7, 30)
    large = synthetic.pack(7, 400, active=30)
    rng = random.Random(7)
    for _ in range(200):
        scenario = synthetic.scenario(rng, small)
        a, b = run(small, scenario), run(large, scenario)
        assert a.rules() == b.rules() and a.undetermined == b.undetermined
