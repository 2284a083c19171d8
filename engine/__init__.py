"""Caveat: a decision-support rules engine for drug-monograph knowledge packs, on durable_rules.

from engine import evaluate
result = evaluate({"conditions": ["restless legs syndrome"], "therapy": {"line": 3}})
"""

from .batch import evaluate_many
from .errors import CaveatError, CompileError, EngineError, PackError, ScenarioError
from .evaluate import evaluate
from .knowledge_base import KnowledgeBase, load_knowledge_base
from .result import Result
from .scenario import Scenario, load_scenario, parse_scenario

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
    "load_knowledge_base",
    "load_scenario",
    "parse_scenario",
]
__version__ = "0.1.0"
