"""A small, independent evaluator of the `when` language: the oracle for the durable_rules engine.

It walks each rule's condition tree over the facts in plain Python, under Kleene's three-valued
logic, and shares no matching code with the compiler: no DNF, no durable_rules, no fact encoding.
For a rule that applies it returns the atoms that support the condition (every true test that makes
it true); for an undetermined rule, those and the missing values it needs. The differential tests
hold the engine to exactly the same answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .compiler import Match
from .conditions import AllOf, AnyOf, NotOf, _ConceptTest, _EnumTest, _NumberTest
from .facts import Atom, Facts, concept_prop
from .rules import Rule
from .vocabulary import Vocabulary

T, F, U = True, False, None

_HOLDS = {
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "eq": lambda a, b: a == b,
}
_OPPOSITE = {"lt": "gte", "lte": "gt", "gt": "lte", "gte": "lt", "eq": "ne"}


class ReferenceMatcher:
    def __init__(self, rules: Sequence[Rule], vocab: Vocabulary) -> None:
        self.rules = list(rules)
        self.vocab = vocab

    def match(self, facts: Facts, include_background: bool) -> Match:
        result = Match()
        for index, rule in enumerate(self.rules):
            if rule.when == "always":
                if include_background:
                    result.applies[index] = {Atom("bg", "bg")}
                continue
            value, support = self.evaluate(rule.when, facts)
            if value is T:
                result.applies[index] = support
            elif value is U:
                result.undetermined[index] = support
        return result

    def evaluate(self, node: Any, facts: Facts) -> tuple[bool | None, set[Atom]]:
        """The node's value and the atoms that support that value."""
        if isinstance(node, AllOf | AnyOf):
            deciding = F if isinstance(node, AllOf) else T
            results = [
                self.evaluate(child, facts) for child in (node.all if deciding is F else node.any)
            ]
            values = [v for v, _ in results]
            if deciding in values:
                value = deciding
                support = set().union(*(s for v, s in results if v is deciding))
            elif U in values:
                value = U
                support = set().union(*(s for _, s in results))
            else:
                value = not deciding
                support = set().union(*(s for _, s in results))
            return value, support
        if isinstance(node, NotOf):
            value, support = self.evaluate(node.not_, facts)
            return (U if value is U else not value), support
        if isinstance(node, _ConceptTest):
            return self._concept(node, facts)
        if isinstance(node, _NumberTest):
            if node.field not in facts.values:
                return U, {Atom("missing", node.field)}
            actual = facts.values[node.field]
            failed = [(op, v) for op, v in node.compare.tests() if not _HOLDS[op](actual, v)]
            if not failed:
                return T, {Atom("cmp", node.field, op, v) for op, v in node.compare.tests()}
            return F, {Atom("cmp", node.field, _OPPOSITE[op], v) for op, v in failed}
        if isinstance(node, _EnumTest):
            if node.field not in facts.values:
                return U, {Atom("missing", node.field)}
            actual = facts.values[node.field]
            if actual in node.values:
                return T, {Atom("cmp", node.field, "eq", actual)}
            return F, {Atom("cmp", node.field, "ne", v) for v in node.values}
        raise TypeError(f"not a condition: {node!r}")

    def _concept(self, node: _ConceptTest, facts: Facts) -> tuple[bool, set[Atom]]:
        if not node.excluded:
            prop = concept_prop(node.concept)
            if node.concept in facts.closure:
                return T, {Atom("has", prop)}
            return F, {Atom("lacks", prop)}

        # is the concept or below it, and not an excluded concept or below one
        def counts(c: str) -> bool:
            lineage = self.vocab.closure(c) if c in self.vocab else {c}
            return node.concept in lineage and not any(x in lineage for x in node.excluded)

        hits = {c for c in facts.given if counts(c)}
        if hits:
            return T, {Atom("has", concept_prop(c, exact=True)) for c in hits}
        everything = [c for c in self.vocab.concepts if counts(c)]
        return F, {Atom("lacks", concept_prop(c, exact=True)) for c in everything}
