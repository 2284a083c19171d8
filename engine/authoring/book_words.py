"""Plain words for the pack book (`caveat rules book`): a rule's condition as a reviewer reads it
("a condition that is, or is a kind of, panic disorder, and therapy planned for more than 3
years"), a case's inputs on one line, and what each evidence basis means.

Everything here returns plain text or, for `condition_html`, HTML whose every piece of text went
through html.escape."""

from __future__ import annotations

from html import escape
from typing import Any

from ..conditions import (
    NEGATION,
    AllOf,
    AnyOf,
    HasCondition,
    HasMedication,
    NotOf,
    _ConceptTest,
    _EnumTest,
    _NumberTest,
    children,
)
from ..knowledge_base import KnowledgeBase

# What each basis says, in the terms of docs/authoring.md ("A basis only where the source names
# it").
BASIS_WORDS = {
    "controlled-trials": "the source names controlled trials",
    "not-placebo-controlled-trials": "the source names trials and says they were not "
    "placebo-controlled",
    "investigational": "the source calls the use investigational",
    "stated": "the source states it, and names no evidence for it",
}

_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth")

# number tests: (words before the value, words after it), per comparison
_AGE = {
    "lt": ("under", ""),
    "lte": ("", "or under"),
    "gt": ("over", ""),
    "gte": ("", "or over"),
    "eq": ("exactly", ""),
    "ne": ("other than", ""),
}
_AMOUNT = {
    "lt": "less than",
    "lte": "at most",
    "gt": "more than",
    "gte": "at least",
    "eq": "exactly",
    "ne": "other than",
}
_LINE = {
    "lt": "before the {n} line of treatment",
    "lte": "at or before the {n} line of treatment",
    "gt": "after the {n} line of treatment",
    "gte": "at the {n} line of treatment or later",
    "eq": "at the {n} line of treatment",
    "ne": "at a line of treatment other than the {n}",
}
_RESPONSE = {
    "none": "no response",
    "transient": "a transient response",
    "sustained": "a sustained response",
}


def _number(value: float) -> str:
    return f"{value:g}"


def ordinal(value: float) -> str:
    """'third' for 3; '12th' past the ninth."""
    n = int(value)
    if n != value or n < 1:
        return _number(value)
    if n <= len(_ORDINALS):
        return _ORDINALS[n - 1]
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _or(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


def _label(kb: KnowledgeBase, concept: str) -> str:
    return kb.vocabulary.label(concept) if concept in kb.vocabulary else concept


def leaf_words(kb: KnowledgeBase, leaf: Any, negated: bool = False) -> str:
    """One test in words; `negated`: as it reads under a `not`."""
    if isinstance(leaf, _ConceptTest):
        what = "condition" if isinstance(leaf, HasCondition) else "current medication"
        head = f"no {what}" if negated else f"a {what}"
        text = f"{head} that is, or is a kind of, {_label(kb, leaf.concept)}"
        if leaf.excluded:
            names = [_label(kb, c) for c in leaf.excluded]
            them = "it" if len(names) == 1 else "them"
            text += f", other than {_or(names)} (or a kind of {them})"
        return text
    if isinstance(leaf, _NumberTest):
        tests = [(NEGATION[op] if negated else op, v) for op, v in leaf.compare.tests()]
        parts = []
        for op, value in tests:
            if leaf.field == "age":
                before, after = _AGE[op]
                parts.append(" ".join(p for p in (before, _number(value), after) if p))
            elif leaf.field == "duration_years":
                unit = "year" if value == 1 else "years"
                parts.append(f"{_AMOUNT[op]} {_number(value)} {unit}")
            else:
                parts.append(_LINE[op].format(n=ordinal(value)))
        joined = " and ".join(parts)
        if negated and len(tests) > 1:  # not (a and b) is (not a) or (not b)
            joined = " or ".join(parts)
        if leaf.field == "age":
            return f"a patient aged {joined}"
        if leaf.field == "duration_years":
            return f"therapy planned (or under way) for {joined}"
        return f"therapy considered {joined}"
    assert isinstance(leaf, _EnumTest)
    values = list(leaf.values)
    nt = "not " if negated else ""
    if leaf.field == "intent":
        return f"therapy {nt}intended as {_or(values)} treatment"
    if leaf.field == "dose":
        if negated:
            return f"therapy at a dose other than {_or(values)}"
        return f"therapy at a {_or(values)} dose"
    said = _or([_RESPONSE.get(v, v) for v in values])
    if negated:
        return f"therapy with a response so far other than {said}"
    return f"therapy with {said} so far"


def _merged_alternatives(kb: KnowledgeBase, node: AnyOf) -> str | None:
    """`any` of plain concept tests of one kind, in one phrase: 'a condition that is, or is a
    kind of, absence seizures, akinetic seizures or myoclonic seizures'."""
    kids = node.any
    kinds = {type(k) for k in kids}
    if len(kids) < 2 or len(kinds) != 1 or not kinds <= {HasCondition, HasMedication}:
        return None
    if any(k.excluded for k in kids):  # type: ignore[union-attr]
        return None
    what = "condition" if isinstance(kids[0], HasCondition) else "current medication"
    names = [_label(kb, k.concept) for k in kids]  # type: ignore[union-attr]
    return f"a {what} that is, or is a kind of, {_or(names)}"


def condition_words(kb: KnowledgeBase, node: Any, negated: bool = False) -> str:
    """A condition tree as one sentence (groups within groups are bracketed)."""
    if node == "always":
        return "always: a background statement, true whatever the scenario"
    if isinstance(node, NotOf):
        inner = node.not_
        if not isinstance(inner, AllOf | AnyOf | NotOf):
            return leaf_words(kb, inner, not negated)
        return condition_words(kb, inner, not negated)  # the `not` carried down to the tests
    if isinstance(node, AllOf | AnyOf):
        if isinstance(node, AnyOf) and not negated:
            merged = _merged_alternatives(kb, node)
            if merged is not None:
                return merged
        # under a `not`, all becomes any and any becomes all (De Morgan)
        conj = "and" if isinstance(node, AllOf) != negated else "or"
        parts = []
        for child in children(node):
            text = condition_words(kb, child, negated)
            parts.append(f"({text})" if isinstance(child, AllOf | AnyOf) else text)
        if conj == "or" and len(parts) > 1:
            return "either " + ", or ".join(parts)
        return f", {conj} ".join(parts)
    return leaf_words(kb, node, negated)


def condition_html(kb: KnowledgeBase, node: Any) -> str:
    """A condition tree as HTML: one sentence when it is flat, else a list for each group that
    holds another group."""
    if node == "always" or not isinstance(node, AllOf | AnyOf):
        return escape(condition_words(kb, node))
    nested = any(isinstance(c, AllOf | AnyOf) for c in children(node))
    if not nested:
        return escape(condition_words(kb, node))
    head = "all of these:" if isinstance(node, AllOf) else "at least one of these:"
    items = "".join(f"<li>{condition_html(kb, c)}</li>" for c in children(node))
    return f'{escape(head)}<ul class="cond">{items}</ul>'


def _item(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        code, system = value.get("code"), value.get("system")
        if code is not None:
            return f"{code} ({system})" if system else str(code)
    return str(value)


def scenario_words(scenario: dict[str, Any]) -> str:
    """What a case gives, on one line: 'age 9; conditions: absence seizures; therapy: intent
    acute'. Written for any data, since a case may hold bad input on purpose."""
    parts = []
    patient = scenario.get("patient")
    if isinstance(patient, dict) and "age" in patient:
        parts.append(f"age {patient['age']}")
    for key in ("conditions", "medications"):
        items = scenario.get(key)
        if isinstance(items, list) and items:
            parts.append(f"{key}: " + ", ".join(_item(i) for i in items))
        elif items is not None and not isinstance(items, list):
            parts.append(f"{key}: {items!r}")
    therapy = scenario.get("therapy")
    if isinstance(therapy, dict) and therapy:
        said = []
        for key, value in therapy.items():
            name = {"duration_years": "years"}.get(str(key), str(key))
            said.append(f"{name} {value}")
        parts.append("therapy: " + ", ".join(said))
    elif therapy is not None and not isinstance(therapy, dict):
        parts.append(f"therapy: {therapy!r}")
    known = {"id", "patient", "conditions", "medications", "therapy"}
    for key in scenario:
        if key not in known:
            parts.append(f"{key}: {scenario[key]!r}")
    return "; ".join(parts) if parts else "nothing given"
