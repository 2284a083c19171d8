"""Compile rules to durable_rules rulesets.

Each rule's `when` tree is rewritten, under Kleene's three-valued logic, into two formulas in
disjunctive normal form over atoms (tests on the scenario fact):

- T: the condition is true;
- U: the condition is unknown (neither true nor false) because a scenario value it needs is missing,
  or because it rests on something being absent that an item of the scenario could be.

A concept test is closed-world where it is used positively (not listed as X: false) and
open-world where the condition rests on its absence, that is under an odd number of `not`s: there
it is false only when no item could be X, and unknown when one could (an item not recognised, or
one recognised only as something broader than X). In the same way `except` is an absence: an item
recognised as a concept broader than an excepted one (an anxiety disorder, where panic disorder is
excepted) leaves the test unknown, not true.

Every disjunct becomes one durable_rules rule over the single scenario fact, so durable_rules'
Rete network does all the matching. A fired T disjunct means the rule applies; a fired U disjunct
means it is undetermined. The atoms of the fired disjuncts are the reasons: for T, every true test
that supports the condition; for U, also the missing values it needs. (For a true formula, the
union of the atoms of its true disjuncts equals its support computed recursively, which is what the
reference evaluator computes without any of this.)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from . import durable_adapter
from .bounded import remember
from .conditions import _ConceptTest, leaves
from .errors import CompileError, PackProblem
from .expansion import Expander, TooComplex
from .facts import LIST_OF_KIND, Atom, Facts
from .rules import Rule
from .vocabulary import Vocabulary

# The most (property, value) texts `Program.encoded` keeps (oldest dropped first): concept
# properties are a few hundred; values (ages, durations) come from input.
TEXTS_BOUND = 4096
# The most sets of concepts whose fact text `Program.encoded` keeps, and the most sets of fired
# disjuncts whose Match `Program.decode` keeps (a scenario's concepts are input, so both are
# bounded; a case library has a few hundred of each).
HEADS_BOUND = 2048
DECODED_BOUND = 2048


# -- the compiled program ----------------------------------------------------------------------

FIELD_NAMES = {
    "age": "age",
    "duration_years": "dur",
    "line": "line",
    "intent": "int",
    "dose": "dose",
    "response": "resp",
    "bg": "bg",
}
ALWAYS_TRUE = {"$nex": {"nil": 1}}  # no fact has a property named nil


@dataclass(frozen=True)
class Disjunct:
    rule: int  # index in the pack's rule list
    truth: Literal["t", "u"]
    atoms: tuple[Atom, ...]

    @cached_property
    def atom_set(self) -> frozenset[Atom]:
        """The atoms as a set, made once (the Matches of `decode` share it)."""
        return frozenset(self.atoms)


@dataclass
class Match:
    """What a matcher found: for each rule that applies or is undetermined, the atoms behind it."""

    applies: dict[int, AbstractSet[Atom]] = field(default_factory=dict)
    undetermined: dict[int, AbstractSet[Atom]] = field(default_factory=dict)
    # whether both mappings list their rules in result order already (Program.decode's do)
    ordered: bool = False


class Program:
    """A pack's rules as durable_rules ruleset definitions, with the fact encoding they expect."""

    def __init__(
        self,
        rules: Sequence[Rule],
        vocab: Vocabulary,
        sites: dict[str, str],
        skip: frozenset[int] = frozenset(),
        order: dict[int, Any] | None = None,
    ) -> None:
        """Compile every rule but those in `skip` (the pack's retired rules). `order`: each
        rule's place in a result (by its index), in which `decode` lists the rules it finds."""
        self.order = order
        self.vocab = vocab
        self.disjuncts: list[Disjunct] = []
        self.never: list[int] = []  # rules whose condition can never hold
        expander = Expander(vocab)
        problems: list[PackProblem] = []
        per_rule: list[list[int]] = []
        for index, rule in enumerate(rules):
            mine: list[int] = []
            if index in skip:
                per_rule.append(mine)
                continue
            try:
                truth = expander.truth(rule.when)
                unknown = expander.unknown(rule.when)
            except TooComplex as exc:
                problems.append(
                    PackProblem(
                        file=sites.get(rule.id, "?"),
                        message=f"rule {rule.id}: {exc}; split it into several rules",
                        code="compile",
                    )
                )
                per_rule.append(mine)
                continue
            if not truth:
                self.never.append(index)
            for which, dnf in (("t", truth), ("u", unknown)):
                for term in dnf:
                    mine.append(len(self.disjuncts))
                    atoms = tuple(sorted(term, key=Atom.sort_key))
                    self.disjuncts.append(Disjunct(index, which, atoms))  # type: ignore[arg-type]
            per_rule.append(mine)
        if problems:
            raise CompileError(problems)

        # Concepts each rule speaks to: those it tests for and their descendants (minus the
        # `except`ed ones, which a rule names only to leave out).
        self.speaks_to: dict[int, frozenset[str]] = {}
        for index, rule in enumerate(rules):
            spoken: set[str] = set()
            for leaf in leaves(rule.when):
                if isinstance(leaf, _ConceptTest):
                    spoken.update(expander.members(leaf.concept, leaf.excluded))
            if index not in skip:
                self.speaks_to[index] = frozenset(spoken)

        self.props: dict[str, str] = {}
        for d in self.disjuncts:
            for a in d.atoms:
                self.props.setdefault(a.prop, self._durable_name(a.prop))
        self.closure_props = {p[2:]: n for p, n in self.props.items() if p.startswith("c:")}
        # concept -> (its "could be" property, the list its items are in)
        self.maybe_props = {
            p[2:]: (n, LIST_OF_KIND[vocab.kind(p[2:])])
            for p, n in self.props.items()
            if p.startswith("m:")
        }
        self.given_props = {p[2:]: n for p, n in self.props.items() if p.startswith("g:")}
        self.value_props = {p: n for p, n in self.props.items() if p in FIELD_NAMES}

        self._texts: dict[tuple[str, type, Any], str] = {}  # for `encoded`
        self._heads: dict[tuple[frozenset[str], ...], tuple[str, int]] = {}  # for `encoded`
        self._decoded: dict[tuple[int, ...], Match] = {}  # for `decode`
        self.groups = self._partition(per_rule, rules, sites)
        self.rulesets = [
            {str(i): {"all": [{"m": self._expression(self.disjuncts[i].atoms)}]} for i in group}
            for group in self.groups
        ]

    def _durable_name(self, prop: str) -> str:
        if prop.startswith(("c:", "g:", "m:")):
            return f"{prop[0]}{self.vocab.order[prop[2:]]}"
        return FIELD_NAMES[prop]

    def _atom_expression(self, atom: Atom) -> dict[str, Any]:
        name = self.props[atom.prop]
        if atom.kind in ("has", "broad", "bg", "maybe"):
            return {name: True}
        if atom.kind in ("lacks", "missing", "sure"):
            return {"$nex": {name: 1}}
        if atom.op == "eq":
            return {name: atom.value}
        op = {"lt": "$lt", "lte": "$lte", "gt": "$gt", "gte": "$gte", "ne": "$neq"}[atom.op]
        return {op: {name: atom.value}}

    def _expression(self, atoms: Sequence[Atom]) -> dict[str, Any]:
        if not atoms:
            return ALWAYS_TRUE
        if len(atoms) == 1:
            return self._atom_expression(atoms[0])
        return {"$and": [self._atom_expression(a) for a in atoms]}

    def _partition(
        self, per_rule: list[list[int]], rules: Sequence[Rule], sites: dict[str, str]
    ) -> list[list[int]]:
        """Split the disjuncts into as few rulesets as durable_rules' limits allow: a rule's
        disjuncts stay together where they fit, and are spread over rulesets where one rule alone
        is too big (each disjunct is a durable_rules rule of its own); only a single disjunct
        that does not fit is refused."""
        order = sorted(
            range(len(per_rule)),
            key=lambda r: [a.sort_key() for d in per_rule[r] for a in self.disjuncts[d].atoms[:1]],
        )

        def shape(units: Sequence[list[int]]) -> list[str]:
            exprs = [self._expression(self.disjuncts[d].atoms) for unit in units for d in unit]
            return durable_adapter.limit_problems(exprs)

        def split(units: list[list[int]]) -> list[list[list[int]]]:
            if not units:
                return []
            problems = shape(units)
            if not problems:
                return [units]
            if len(units) == 1:
                (unit,) = units
                if len(unit) == 1:
                    rule = rules[self.disjuncts[unit[0]].rule]
                    raise CompileError(
                        [
                            PackProblem(
                                file=sites.get(rule.id, "?"),
                                message=f"rule {rule.id} cannot be compiled within durable_rules' "
                                f"limits: {'; '.join(problems)}",
                                code="compile",
                            )
                        ]
                    )
                middle = len(unit) // 2
                return split([unit[:middle]]) + split([unit[middle:]])
            middle = len(units) // 2
            return split(units[:middle]) + split(units[middle:])

        groups = split([per_rule[r] for r in order if per_rule[r]])
        return [sorted(d for unit in group for d in unit) for group in groups]

    # -- facts in, matches out ---------------------------------------------------------------
    def encode(self, facts: Facts, include_background: bool) -> dict[str, Any]:
        """The scenario fact durable_rules sees: only the properties some rule tests."""
        return {**self._concepts(facts), **self._values(facts.values, include_background)}

    def _concepts(self, facts: Facts) -> dict[str, Any]:
        """The fact's concept properties (what is given, its closure, what an item could be)."""
        fact: dict[str, Any] = {}
        closure_props, given_props = self.closure_props, self.given_props
        for c in facts.closure:
            name = closure_props.get(c)
            if name is not None:
                fact[name] = True
        for c in facts.given:
            name = given_props.get(c)
            if name is not None:
                fact[name] = True
        unrecognized, could_be = facts.unrecognized, facts.could_be
        for concept, (name, listed) in self.maybe_props.items():
            if listed in unrecognized or concept in could_be:
                fact[name] = True
        return fact

    def _values(self, values: dict[str, Any], include_background: bool) -> dict[str, Any]:
        """The fact's value properties (age, therapy values), and the background flag."""
        props = self.value_props
        fact = {props[key]: value for key, value in values.items() if key in props}
        if include_background and "bg" in props:
            fact["bg"] = True
        return fact

    def encoded(self, facts: Facts, include_background: bool) -> tuple[str, int]:
        """The fact of `encode` as durable_rules' JSON, with its number of properties. The
        same fact is always the same text (an answer cache can be keyed by it): the concept
        properties come first, in name order, then the values, in name order. The concepts'
        part is kept per set of concepts, and each value's text per value."""
        # (the closure follows from the concepts given: a key of the small sets only)
        concepts = (facts.given, facts.unrecognized, facts.could_be)
        head = self._heads.get(concepts)
        if head is None:
            fact = self._concepts(facts)
            text = "".join(self._text(k, fact[k]) for k in sorted(fact))
            head = remember(self._heads, concepts, (text, len(fact)), HEADS_BOUND)
        text, size = head
        if facts.values or include_background:
            tail = self._values(facts.values, include_background)
            text += "".join(self._text(k, tail[k]) for k in sorted(tail))
            size += len(tail)
        return durable_adapter.fact_text((text,)), size

    def _text(self, key: str, value: Any) -> str:
        entry = (key, value.__class__, value)  # (True, 1 and 1.0 are different values here)
        text = self._texts.get(entry)
        if text is None:
            text = remember(
                self._texts, entry, durable_adapter.encode_property(key, value), TEXTS_BOUND
            )
        return text

    def decode(self, fired: Iterable[int]) -> Match:
        """What the fired disjuncts (their numbers) say: a Match made once per set of fired
        disjuncts and shared (no one changes a Match)."""
        key = tuple(fired)
        match = self._decoded.get(key)
        if match is None:
            match = Match()
            for i in key:
                d = self.disjuncts[i]
                target = match.applies if d.truth == "t" else match.undetermined
                held = target.get(d.rule)
                # one disjunct of a rule (the usual case): its own set, shared, not a copy
                target[d.rule] = d.atom_set if held is None else held | d.atom_set
            if self.order is not None:
                place = self.order.__getitem__
                applies, undetermined = match.applies, match.undetermined
                match.applies = {r: applies[r] for r in sorted(applies, key=place)}
                match.undetermined = {r: undetermined[r] for r in sorted(undetermined, key=place)}
                match.ordered = True
            match = remember(self._decoded, key, match, DECODED_BOUND)
        return match
