"""A small, independent evaluator of the `when` language: the oracle for the durable_rules engine.

It walks each rule's condition tree over the facts in plain Python, under Kleene's three-valued
logic, and shares no matching code with the compiler: no DNF, no durable_rules, no fact encoding.
A concept test under an odd number of `not`s (where the rule rests on an absence) is unknown, not
false, when an item could be the concept: one not recognised, or one recognised only as something
broader. An `except` test is unknown, not true, for an item given as a concept broader than an
excepted one.
For a rule that applies it returns the atoms that support the condition (every true test that makes
it true); for an undetermined rule, those and the missing values it needs. The differential tests
hold the engine to exactly the same answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .compiler import Match
from .conditions import HOLDS, AllOf, AnyOf, NotOf, _ConceptTest, _EnumTest, _NumberTest
from .facts import Atom, Facts, concept_prop, maybe_prop
from .rules import Rule
from .vocabulary import Vocabulary

T, F, U = True, False, None

_OPPOSITE = {"lt": "gte", "lte": "gt", "gt": "lte", "gte": "lt", "eq": "ne"}


class ReferenceMatcher:
    """Each condition tree is first turned into nested tuples of plain values (once per node),
    then walked per scenario: a fair plain-Python floor to measure the engine against."""

    def __init__(self, rules: Sequence[Rule], vocab: Vocabulary) -> None:
        self.rules = list(rules)
        self.vocab = vocab
        self._prepared: dict[tuple[int, bool], tuple[Any, tuple[Any, ...]]] = {}
        self._trees = [
            (None if r.when == "always" else self.prepare(r.when))
            for r in self.rules
            if r.status != "retired"  # never evaluated
        ]
        self._index = [i for i, r in enumerate(self.rules) if r.status != "retired"]

    def match(self, facts: Facts, include_background: bool) -> Match:
        result = Match()
        for index, tree in zip(self._index, self._trees, strict=True):
            if tree is None:
                if include_background:
                    result.applies[index] = {Atom("bg", "bg")}
                continue
            value, support = self._eval(tree, facts)
            if value is T:
                result.applies[index] = support
            elif value is U:
                result.undetermined[index] = support
        return result

    def evaluate(
        self, node: Any, facts: Facts, negated: bool = False
    ) -> tuple[bool | None, set[Atom]]:
        """The node's value and the atoms that support that value (`negated`: the node stands
        under an odd number of `not`s)."""
        return self._eval(self.prepare(node, negated), facts)

    # -- preparing a tree ---------------------------------------------------------------------
    def prepare(self, node: Any, neg: bool = False) -> tuple[Any, ...]:
        cached = self._prepared.get((id(node), neg))
        if cached is None or cached[0] is not node:
            cached = (node, self._prepare(node, neg))
            self._prepared[(id(node), neg)] = cached
        return cached[1]

    def _prepare(self, node: Any, neg: bool) -> tuple[Any, ...]:
        if isinstance(node, AllOf):
            return ("all", tuple(self.prepare(c, neg) for c in node.all))
        if isinstance(node, AnyOf):
            return ("any", tuple(self.prepare(c, neg) for c in node.any))
        if isinstance(node, NotOf):
            return ("not", self.prepare(node.not_, not neg))
        if isinstance(node, _ConceptTest):
            # for an absence the rule rests on: (the concept, its list, the atom "no item could
            # be it", the atom "an item could be it"); None where the test is used positively
            open_world = (
                (
                    node.concept,
                    node.kind + "s",
                    Atom("sure", maybe_prop(node.concept)),
                    Atom("maybe", maybe_prop(node.concept)),
                )
                if neg
                else None
            )
            if not node.excluded:
                prop = concept_prop(node.concept)
                return ("has", node.concept, Atom("has", prop), Atom("lacks", prop), open_world)
            members = [c for c in self.vocab.concepts if self._counts(node, c)]
            # members broader than something left out: an item given as one could be it
            left_out = [
                c
                for c in self.vocab.concepts
                if any(x in self.vocab.closure(c) for x in node.excluded)
            ]
            broader = frozenset(
                m for m in members if any(m in self.vocab.closure(c) for c in left_out)
            )
            surely = frozenset(members) - broader
            lacks_surely = frozenset(Atom("lacks", concept_prop(c, exact=True)) for c in surely)
            lacks_broader = frozenset(Atom("lacks", concept_prop(c, exact=True)) for c in broader)
            return ("in", surely, broader, lacks_surely, lacks_broader, open_world)
        if isinstance(node, _NumberTest):
            tests = tuple(
                (
                    HOLDS[op],
                    Atom("cmp", node.field, op, v),
                    Atom("cmp", node.field, _OPPOSITE[op], v),
                )
                for op, v in node.compare.tests()
            )
            return ("num", node.field, tests, Atom("missing", node.field))
        if isinstance(node, _EnumTest):
            values = node.values
            falses = frozenset(Atom("cmp", node.field, "ne", v) for v in values)
            return ("enum", node.field, frozenset(values), falses, Atom("missing", node.field))
        raise TypeError(f"not a condition: {node!r}")

    def _counts(self, node: _ConceptTest, concept: str) -> bool:
        """The concept is the tested one or below it, and not an excluded one or below one."""
        lineage = self.vocab.closure(concept)
        return node.concept in lineage and not any(x in lineage for x in node.excluded)

    # -- walking it ----------------------------------------------------------------------------
    @staticmethod
    def _absent(
        facts: Facts, lacks: set[Atom], open_world: tuple[Any, ...] | None
    ) -> tuple[bool | None, set[Atom]]:
        """A concept test no item is known to satisfy: false, unless the rule rests on the
        absence and an item could be the concept."""
        if open_world is None:
            return F, lacks
        concept, field, sure, maybe = open_world
        if field in facts.unrecognized or concept in facts.could_be:
            return U, {*lacks, maybe}
        return F, {*lacks, sure}

    def _eval(self, tree: tuple[Any, ...], facts: Facts) -> tuple[bool | None, set[Atom]]:
        kind = tree[0]
        if kind == "has":
            _, concept, has, lacks, open_world = tree
            if concept in facts.closure:
                return T, {has}
            return self._absent(facts, {lacks}, open_world)
        if kind == "in":
            _, surely, broader, lacks_surely, lacks_broader, open_world = tree
            if hits := surely & facts.given:
                return T, {Atom("has", concept_prop(c, exact=True)) for c in hits}
            if maybe := broader & facts.given:
                return U, {
                    *lacks_surely,
                    *(Atom("broad", concept_prop(c, exact=True)) for c in maybe),
                }
            return self._absent(facts, {*lacks_surely, *lacks_broader}, open_world)
        if kind == "num":
            actual = facts.values.get(tree[1])
            if actual is None:
                return U, {tree[3]}
            failed = {neg for holds, _, neg in tree[2] if not holds(actual, neg.value)}
            if not failed:
                return T, {atom for _, atom, _ in tree[2]}
            return F, failed
        if kind == "enum":
            actual = facts.values.get(tree[1])
            if actual is None:
                return U, {tree[4]}
            if actual in tree[2]:
                return T, {Atom("cmp", tree[1], "eq", actual)}
            return F, set(tree[3])
        if kind == "not":
            value, support = self._eval(tree[1], facts)
            return (U if value is U else not value), support
        # all / any (Kleene): one deciding child decides; otherwise unknown if any is unknown
        deciding = F if kind == "all" else T
        results = [self._eval(child, facts) for child in tree[1]]
        decided = [s for v, s in results if v is deciding]
        if decided:
            return deciding, set().union(*decided)
        value = U if any(v is U for v, _ in results) else (not deciding)
        return value, set().union(*(s for _, s in results))
