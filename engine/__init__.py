"""Caveat: a decision-support rules engine for drug-monograph knowledge packs, on durable_rules.

from engine import evaluate
result = evaluate({"conditions": ["restless legs syndrome"], "therapy": {"line": 3}})

The names below are imported when first used, so `import engine` (and a command that needs
little of it) does not pay for what it does not use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .batch import evaluate_many
    from .errors import CaveatError, CompileError, EngineError, PackError, ScenarioError
    from .knowledge_base import KnowledgeBase, load_knowledge_base
    from .pipeline import evaluate
    from .population.partition import evaluate_partition
    from .result import Result
    from .scenario import Scenario, load_scenario, parse_scenario

_WHERE = {
    "evaluate_many": "batch",
    "CaveatError": "errors",
    "CompileError": "errors",
    "EngineError": "errors",
    "PackError": "errors",
    "ScenarioError": "errors",
    "evaluate": "pipeline",
    "evaluate_partition": "population.partition",
    "KnowledgeBase": "knowledge_base",
    "load_knowledge_base": "knowledge_base",
    "Result": "result",
    "Scenario": "scenario",
    "load_scenario": "scenario",
    "parse_scenario": "scenario",
}

__all__ = [
    "CaveatError",
    "CompileError",
    "EngineError",
    "KnowledgeBase",
    "PackError",
    "Result",
    "Scenario",
    "ScenarioError",
    "evaluate",
    "evaluate_many",
    "evaluate_partition",
    "load_knowledge_base",
    "load_scenario",
    "parse_scenario",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
