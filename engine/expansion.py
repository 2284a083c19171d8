"""Conditions into disjunctive normal form, under Kleene's three-valued logic.

Each rule's `when` tree becomes two formulas over atoms (tests on the scenario fact): T, the
condition is true, and U, the condition is unknown (neither true nor false) because a scenario
value it needs is missing, or because it rests on something being absent that an item of the
scenario could be. engine.compiler turns every disjunct of both into one durable_rules rule; the
open- and closed-world reading of concept tests is described there.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from typing import Any

from .conditions import (
    NEGATION,
    AllOf,
    AnyOf,
    NotOf,
    When,
    _ConceptTest,
    _EnumTest,
    _NumberTest,
)
from .facts import Atom, concept_prop, maybe_prop
from .scenario import DOSES, INTENTS, MAX_AGE, MAX_LINE, MAX_YEARS, RESPONSES
from .vocabulary import Vocabulary

Term = frozenset[Atom]
Dnf = list[Term]

MAX_TERMS = 512  # alternatives per rule and per truth value
MAX_UNKNOWN_CHILDREN = 8  # children of one all/any that may each be unknown
ENUMS: dict[str, tuple[str, ...]] = {"intent": INTENTS, "dose": DOSES, "response": RESPONSES}
NUMBERS: dict[str, tuple[float, float, bool]] = {  # low, high, integer
    "age": (0, MAX_AGE, False),
    "duration_years": (0, MAX_YEARS, False),
    "line": (1, MAX_LINE, True),
}


class TooComplex(Exception):
    pass


class Expander:
    """T, F and U of condition trees as DNF, with contradictory alternatives pruned. `neg` says
    whether a node stands under an odd number of `not`s (where absence makes a rule true)."""

    def __init__(self, vocab: Vocabulary) -> None:
        self.vocab = vocab
        self._memo: dict[tuple[int, str, bool], Dnf] = {}

    def truth(self, when: When) -> Dnf:
        if when == "always":
            return [frozenset({Atom("bg", "bg")})]
        return self.t(when)

    def unknown(self, when: When) -> Dnf:
        return [] if when == "always" else self.u(when)

    # -- the three truth values -------------------------------------------------------------
    def t(self, node: Any, neg: bool = False) -> Dnf:
        return self._cached(node, "t", neg)

    def f(self, node: Any, neg: bool = False) -> Dnf:
        return self._cached(node, "f", neg)

    def u(self, node: Any, neg: bool = False) -> Dnf:
        return self._cached(node, "u", neg)

    def _cached(self, node: Any, which: str, neg: bool) -> Dnf:
        key = (id(node), which, neg)
        if key not in self._memo:
            self._memo[key] = self._compute(node, which, neg)
        return self._memo[key]

    def _compute(self, node: Any, which: str, neg: bool) -> Dnf:
        if isinstance(node, AllOf | AnyOf):
            kids = list(node.all if isinstance(node, AllOf) else node.any)
            conj = isinstance(node, AllOf)
            if which == ("t" if conj else "f"):
                return self.conj([self._cached(k, which, neg) for k in kids])
            if which == ("f" if conj else "t"):
                return self.disj([self._cached(k, which, neg) for k in kids])
            # unknown: no child decides the value (all true for `all`, all false for `any`)
            # and at least one child is unknown
            other = "t" if conj else "f"
            maybe = [k for k in kids if self.u(k, neg)]
            if len(maybe) > MAX_UNKNOWN_CHILDREN:
                raise TooComplex(
                    f"{len(maybe)} children of one all/any can be unknown "
                    f"(at most {MAX_UNKNOWN_CHILDREN})"
                )
            alternatives: list[Dnf] = []
            for size in range(1, len(maybe) + 1):
                for subset in itertools.combinations(maybe, size):
                    chosen = {id(k) for k in subset}
                    parts = [
                        self.u(k, neg) if id(k) in chosen else self._cached(k, other, neg)
                        for k in kids
                    ]
                    alternatives.append(self.conj(parts))
            return self.disj(alternatives)
        if isinstance(node, NotOf):
            return self._cached(node.not_, {"t": "f", "f": "t", "u": "u"}[which], not neg)
        if isinstance(node, _ConceptTest):
            return self._concept(node, which, neg)
        if isinstance(node, _NumberTest):
            tests = node.compare.tests()
            if which == "t":
                return [frozenset(Atom("cmp", node.field, op, v) for op, v in tests)]
            if which == "f":
                return self.disj(
                    [[frozenset({Atom("cmp", node.field, NEGATION[op], v)})] for op, v in tests]
                )
            return [frozenset({Atom("missing", node.field)})]
        if isinstance(node, _EnumTest):
            values = node.values
            if which == "t":
                return [frozenset({Atom("cmp", node.field, "eq", v)}) for v in values]
            if which == "f":
                return self.prune([frozenset(Atom("cmp", node.field, "ne", v) for v in values)])
            return [frozenset({Atom("missing", node.field)})]
        raise TypeError(f"not a condition: {node!r}")

    def _concept(self, node: _ConceptTest, which: str, neg: bool) -> Dnf:
        if not node.excluded:
            present = [frozenset({Atom("has", concept_prop(node.concept))})]
            absent = frozenset({Atom("lacks", concept_prop(node.concept))})
            broad: list[Term] = []
        else:
            certain, broader = self.split_members(node.concept, node.excluded)
            present = [frozenset({Atom("has", concept_prop(m, exact=True))}) for m in certain]
            absent = frozenset(Atom("lacks", concept_prop(m, exact=True)) for m in certain)
            # a concept broader than an excepted one: the item could be that one
            broad = [absent | {Atom("broad", concept_prop(b, exact=True))} for b in broader]
            absent |= {Atom("lacks", concept_prop(b, exact=True)) for b in broader}
        if which == "t":
            return present
        if not neg:  # used positively, a concept test is closed-world
            return [absent] if which == "f" else broad
        # the rule rests on this absence: it is known only when no item could be the concept
        maybe = maybe_prop(node.concept)
        if which == "f":
            return [absent | {Atom("sure", maybe)}]
        return [*broad, absent | {Atom("maybe", maybe)}]

    def split_members(self, concept: str, excluded: Sequence[str]) -> tuple[list[str], list[str]]:
        """The members of an `except` test split in two: those that are surely not an excepted
        concept, and those broader than an excepted one or than a kind of it (an item given as
        such could be the excepted one: agoraphobia could be panic disorder with agoraphobia)."""
        members = self.members(concept, excluded)
        left_out = {d for ex in excluded for d in self.vocab.descendants.get(ex, {ex})}
        broader = {a for d in left_out for a in self.vocab.ancestors.get(d, ())}
        return [m for m in members if m not in broader], [m for m in members if m in broader]

    def members(self, concept: str, excluded: Sequence[str]) -> list[str]:
        """Concepts that are `concept` or below it, but not any excluded one or below it."""
        out = set(self.vocab.descendants.get(concept, {concept}))
        for ex in excluded:
            out -= self.vocab.descendants.get(ex, {ex})
        return sorted(out, key=lambda c: self.vocab.order.get(c, 0))

    # -- DNF algebra ---------------------------------------------------------------------------
    def conj(self, parts: Sequence[Dnf]) -> Dnf:
        result: Dnf = [frozenset()]
        for part in parts:
            combined = {a | b for a in result for b in part}
            result = self.prune(combined)
            if len(result) > MAX_TERMS:
                raise TooComplex(f"the condition expands to more than {MAX_TERMS} alternatives")
        return result

    def disj(self, parts: Iterable[Dnf]) -> Dnf:
        seen: dict[Term, None] = {}
        for part in parts:
            for term in part:
                seen.setdefault(term, None)
        if len(seen) > MAX_TERMS:
            raise TooComplex(f"the condition expands to more than {MAX_TERMS} alternatives")
        return sorted(seen, key=_term_key)

    def prune(self, terms: Iterable[Term]) -> Dnf:
        return sorted({t for t in terms if satisfiable(t, self.vocab)}, key=_term_key)


def _term_key(term: Term) -> list[tuple[Any, ...]]:
    return sorted(a.sort_key() for a in term)


def satisfiable(term: Term, vocab: Vocabulary) -> bool:
    """False when the atoms of one alternative cannot all hold (age < 5 and age > 10, say)."""
    present = {a.prop for a in term if a.kind in ("has", "broad", "maybe")}
    absent = {a.prop for a in term if a.kind in ("lacks", "missing", "sure")}
    if present & absent:
        return False
    for prop in present:
        concept = prop[2:]
        if prop.startswith("m:") or concept not in vocab:
            continue
        # a given concept implies its closure flag, and a closure flag implies its ancestors'
        implied = vocab.closure(concept) if prop.startswith("g:") else vocab.ancestors[concept]
        if any(concept_prop(c) in absent for c in implied):
            return False
    tests: dict[str, list[Atom]] = {}
    for a in term:
        if a.kind == "cmp":
            tests.setdefault(a.prop, []).append(a)
    for prop, atoms in tests.items():
        if prop in absent:
            return False
        ok = _enum_ok(prop, atoms) if prop in ENUMS else _number_ok(prop, atoms)
        if not ok:
            return False
    return True


def _enum_ok(prop: str, atoms: list[Atom]) -> bool:
    eq = {a.value for a in atoms if a.op == "eq"}
    ne = {a.value for a in atoms if a.op == "ne"}
    if len(eq) > 1 or eq & ne:
        return False
    return bool(eq) or not set(ENUMS[prop]) <= ne


def _number_ok(prop: str, atoms: list[Atom]) -> bool:
    low, high, integer = NUMBERS.get(prop, (-math.inf, math.inf, False))
    lo, lo_open, hi, hi_open = float(low), False, float(high), False
    excluded: set[float] = set()
    for a in atoms:
        v = float(a.value)
        if a.op in ("gt", "gte") and (v > lo or (v == lo and a.op == "gt")):
            lo, lo_open = v, a.op == "gt"
        elif a.op in ("lt", "lte") and (v < hi or (v == hi and a.op == "lt")):
            hi, hi_open = v, a.op == "lt"
        elif a.op == "eq":
            if v > lo or (v == lo and not lo_open):
                lo, lo_open = v, False
            else:
                return False
            if v < hi or (v == hi and not hi_open):
                hi, hi_open = v, False
            else:
                return False
        elif a.op == "ne":
            excluded.add(v)
    if integer:
        lo = math.floor(lo) + 1 if lo_open and lo == math.floor(lo) else math.ceil(lo)
        hi = math.ceil(hi) - 1 if hi_open and hi == math.ceil(hi) else math.floor(hi)
        return any(v not in excluded for v in range(int(lo), int(hi) + 1)) if lo <= hi else False
    if lo > hi or (lo == hi and (lo_open or hi_open)):
        return False
    return not (lo == hi and lo in excluded)
