"""The pipeline, end to end: scenario -> facts -> matcher -> statements -> result."""

from __future__ import annotations

from typing import Any, Literal

from .errors import CapacityError, Problem, ScenarioError
from .facts import normalise
from .knowledge_base import KnowledgeBase, load_knowledge_base
from .result import Result
from .scenario import parse_scenario
from .statements import build_result


def evaluate(
    scenario: Any,
    *,
    knowledge_base: KnowledgeBase | None = None,
    include_background: bool = False,
    include_draft: bool = False,
) -> Result:
    """Evaluate one scenario (a mapping, or a `Scenario`) against a pack (the bundled one by
    default). Raises `ScenarioError` for anything wrong with the input, including a scenario
    too large for the engine to hold; nothing is evaluated in that case.
    Draft rules are left out unless `include_draft`; retired rules are never evaluated."""
    kb = knowledge_base if knowledge_base is not None else load_knowledge_base()
    return run(kb, scenario, include_background=include_background, include_draft=include_draft)


def run(
    kb: KnowledgeBase,
    scenario: Any,
    *,
    include_background: bool = False,
    include_draft: bool = False,
    matcher: Literal["durable", "reference"] = "durable",
    source: str | None = None,
    plain: bool = False,
) -> Result:
    """One evaluation. With `plain`, every step takes its plain path: pydantic validates the
    scenario and every part of the result, nothing is remembered between evaluations, and the
    fact is written afresh for durable_rules. The fast path (the default) must give an equal
    result; tests/test_fast_path.py and the benchmark check that it does."""
    parsed = parse_scenario(scenario, source, plain=plain)
    facts = normalise(parsed, kb.vocabulary, memo=not plain)
    try:
        if matcher == "reference":
            match = kb.reference.match(facts, include_background)
        elif plain:
            match = kb.matcher.match_plain(facts, include_background)
        else:
            match = kb.matcher.match(facts, include_background)
    except CapacityError as exc:
        problem = Problem(path="", message=f"{exc}")
        raise ScenarioError([problem], source) from None
    return build_result(kb, facts, match, include_background, include_draft, plain=plain)
