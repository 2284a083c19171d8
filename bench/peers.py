"""The bare matchers beside Caveat's pipeline, on the same normalised facts.

Every figure here starts from facts already normalised and encoded (the fact durable_rules is
given), so it measures matching alone: which of the pack's compiled alternatives (disjuncts)
hold. Three matchers answer the same question:

- durable_rules alone: the adapter's `fire_text` on the fact's JSON text;
- zen-engine expressions (GoRules' engine, `pip install zen-engine`): one compiled expression
  per disjunct, each evaluated on the fact;
- a plain-Python floor: the disjuncts compiled into one Python function of the fact mapping.

Each is checked against durable_rules' own answer on every fact before it is timed (a matcher
that answers something else is not compared), and the figure is facts per CPU-second.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from engine import KnowledgeBase
from engine.durable_adapter import expression_tests
from engine.facts import normalise
from engine.scenario import parse_scenario

OPS = {"$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">=", "$neq": "!="}


def disjuncts(kb: KnowledgeBase) -> list[tuple[int, dict[str, Any]]]:
    """(number, single-fact expression) of every compiled disjunct, as durable_rules has them."""
    return [
        (int(name), rule["all"][0]["m"])
        for ruleset in kb.program.rulesets
        for name, rule in ruleset.items()
    ]


# How each kind of test reads in each language: (absent, equal, compare, empty conjunction).
PYTHON = ("{p!r} not in f", "g({p!r}) == {v!r}", "{p!r} in f and f[{p!r}] {o} {v!r}", "True")
ZEN = ("{p} == null", "{p} == {j}", "({p} != null and {p} {o} {j})", "true")


def condition(expr: dict[str, Any], language: tuple[str, str, str, str]) -> str:
    """A compiled disjunct's tests as one condition of `language` (PYTHON or ZEN)."""
    absent, equal, compare, empty = language
    parts = []
    for prop, op, value in expression_tests(expr):
        form = absent if op == "$nex" else equal if op == "$eq" else compare
        parts.append(form.format(p=prop, v=value, j=json.dumps(value), o=OPS.get(op, "")))
    return " and ".join(parts) or empty


def python_source(kb: KnowledgeBase) -> str:
    """One function of the fact mapping that returns the numbers of the disjuncts that hold."""
    lines = ["def match(f):", "    g = f.get", "    out = []"]
    for number, expr in disjuncts(kb):
        lines.append(f"    if {condition(expr, PYTHON)}: out.append({number})")
    lines.append("    return out")
    return "\n".join(lines)


def zen_expression(expr: dict[str, Any]) -> str:
    return condition(expr, ZEN)


def _rate(fn: Callable[[Any], Any], inputs: list[Any], reps: int) -> float:
    rates = []
    for _ in range(reps):
        start = time.process_time()
        for item in inputs:
            fn(item)
        rates.append(len(inputs) / (time.process_time() - start))
    return statistics.median(rates)


def bench_peers(kb: KnowledgeBase, scenarios: list[Any], reps: int) -> dict[str, Any]:
    facts = [normalise(parse_scenario(s), kb.vocabulary) for s in scenarios]
    mappings = [kb.program.encode(f, False) for f in facts]
    texts = [kb.program.encoded(f, False) for f in facts]
    fire = kb.matcher.rulesets.fire_text
    truth = [sorted(int(n) for n in fire(text, size)) for text, size in texts]
    out: dict[str, Any] = {"facts": len(facts), "disjuncts": len(disjuncts(kb))}
    matchers: dict[str, Callable[[Any], Any]] = {}
    inputs: dict[str, list[Any]] = {}

    matchers["durable_rules alone"] = lambda pair: fire(*pair)
    inputs["durable_rules alone"] = texts

    namespace: dict[str, Any] = {}
    exec(python_source(kb), namespace)  # our own generated source, from our own pack
    python_match = namespace["match"]
    if [sorted(python_match(m)) for m in mappings] == truth:
        matchers["plain-Python floor"] = python_match
        inputs["plain-Python floor"] = mappings
    else:
        out["plain-Python floor"] = "answers differ from durable_rules: not timed"

    try:
        import zen
    except ImportError:
        out["zen-engine expressions"] = "not installed (pip install zen-engine)"
    else:
        compiled = [(n, zen.compile_expression(zen_expression(e))) for n, e in disjuncts(kb)]

        def zen_match(fact: dict[str, Any]) -> list[int]:
            return [n for n, expression in compiled if expression.evaluate(fact) is True]

        if [sorted(zen_match(m)) for m in mappings] == truth:
            matchers["zen-engine expressions"] = zen_match
            inputs["zen-engine expressions"] = mappings
        else:
            out["zen-engine expressions"] = "answers differ from durable_rules: not timed"
    for name, fn in matchers.items():
        out[name] = {"facts_per_cpu_second": _rate(fn, inputs[name], reps)}
    return out
