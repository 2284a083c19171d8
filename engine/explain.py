"""Why a rule applied, did not apply, or is undetermined: its condition tree, every leaf's value and
the scenario facts behind it (with the is_a chain and the ICD-10-CM codes walked)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from .cleantext import printable
from .conditions import (
    FACT_PATHS,
    SYMBOL,
    AllOf,
    AnyOf,
    NotOf,
    _ConceptTest,
    _EnumTest,
    _NumberTest,
    children,
    concepts_mentioned,
)
from .facts import Facts, normalise
from .knowledge_base import KnowledgeBase
from .pipeline import run
from .render import because_text
from .result import Because, CaveatNote, Recognized
from .rules import Rule
from .scenario import parse_scenario
from .statements import needs, reasons

Value = Literal["true", "false", "unknown"]
Status = Literal["applies", "does not apply", "undetermined"]
_VALUE = {True: "true", False: "false", None: "unknown"}


class Node(BaseModel):
    """One test of a condition tree, its value on the scenario, and the facts behind it."""

    test: str = Field(description="the test in words")
    value: Value
    facts: list[Because] = Field(default=[], description="the scenario facts it rests on")
    needs: list[str] = Field(default=[], description="what would decide it, when unknown")
    children: list[Node] = Field(default=[], description="the tests under all, any or not")


class RuleExplanation(BaseModel):
    """Why one rule applies, does not apply, or is undetermined."""

    rule: str
    category: str
    statement: str
    status: Status
    lifecycle: Literal["draft", "active", "retired"] = Field(description="the rule's status")
    condition: Node | None = Field(description="None for a background rule (`when: always`)")
    caveats: list[CaveatNote] = Field(description="its caveats, each with its supporting words")
    quote: str
    basis: str


class Explanation(BaseModel):
    """The explanation of a scenario: how its items were recognised, and the rules in scope."""

    scenario_id: str | None
    scope: str
    recognized: list[Recognized]
    rules: list[RuleExplanation]


def leaf_text(kb: KnowledgeBase, leaf: Any) -> str:
    if isinstance(leaf, _ConceptTest):
        label = kb.vocabulary.label(leaf.concept) if leaf.concept in kb.vocabulary else leaf.concept
        text = f"{leaf.kind} is {label} or a kind of it"
        if leaf.excluded:
            names = [kb.vocabulary.label(c) if c in kb.vocabulary else c for c in leaf.excluded]
            text += f", except {', '.join(names)}"
        return text
    if isinstance(leaf, _NumberTest):
        path = FACT_PATHS[leaf.field]
        return " and ".join(f"{path} {SYMBOL[op]} {v:g}" for op, v in leaf.compare.tests())
    assert isinstance(leaf, _EnumTest)
    path, values = FACT_PATHS[leaf.field], leaf.values
    return f"{path} = {values[0]}" if len(values) == 1 else f"{path} in [{', '.join(values)}]"


def explain_node(kb: KnowledgeBase, node: Any, facts: Facts, negated: bool = False) -> Node:
    """`negated`: the node stands under an odd number of `not`s, where an absence decides."""
    value, support = kb.reference.evaluate(node, facts, negated)
    if isinstance(node, AllOf | AnyOf | NotOf):
        name = (
            "all of" if isinstance(node, AllOf) else "any of" if isinstance(node, AnyOf) else "not"
        )
        inner = not negated if isinstance(node, NotOf) else negated
        return Node(
            test=name,
            value=_VALUE[value],
            children=[explain_node(kb, child, facts, inner) for child in children(node)],
        )
    return Node(
        test=leaf_text(kb, node),
        value=_VALUE[value],
        facts=reasons(kb, facts, support),
        needs=needs(kb, support, facts, getattr(node, "excluded", ())),
    )


def touches(kb: KnowledgeBase, rule: Rule, facts: Facts) -> bool:
    """The rule tests a concept the scenario has, or one below a concept the scenario has."""
    near = set(facts.closure)
    for concept in facts.given:
        near |= kb.vocabulary.descendants.get(concept, {concept})
    return bool(concepts_mentioned(rule.when) & near)


def explain(
    kb: KnowledgeBase,
    scenario: Any,
    rule_id: str | None = None,
    include_background: bool = False,
    include_draft: bool = False,
) -> Explanation:
    """Explain one rule, or (without `rule_id`) the rules that applied, the undetermined ones and
    the near misses: rules that touch a concept of the scenario but did not apply."""
    if rule_id is not None and rule_id not in kb.rule_index:
        raise KeyError(rule_id)
    parsed = parse_scenario(scenario)
    facts = normalise(parsed, kb.vocabulary)
    result = run(kb, parsed, include_background=True, include_draft=include_draft)
    applied = {s.rule for s in result.statements}
    undetermined = {u.rule for u in result.undetermined}
    chosen: list[Rule] = []
    for rule in kb.rules:
        if rule_id is not None:
            if rule.id == rule_id:
                chosen.append(rule)
        elif rule.status == "retired" or (rule.status == "draft" and not include_draft):
            continue
        elif rule.background:
            if include_background:
                chosen.append(rule)
        elif rule.id in applied or rule.id in undetermined or touches(kb, rule, facts):
            chosen.append(rule)
    explained = []
    for rule in chosen:
        status: Status = (
            "applies"
            if rule.id in applied
            else "undetermined"
            if rule.id in undetermined
            else "does not apply"
        )
        index = kb.rule_index[rule.id]
        explained.append(
            RuleExplanation(
                rule=rule.id,
                category=rule.category,
                statement=rule.statement,
                status=status,
                lifecycle=rule.status,
                condition=None if rule.background else explain_node(kb, rule.when, facts),
                caveats=kb.caveat_notes[index],
                quote=rule.evidence.quote,
                basis=rule.evidence.basis,
            )
        )
    scope = f"rule {rule_id}" if rule_id else "rules that apply, are undetermined or nearly apply"
    return Explanation(
        scenario_id=parsed.id, scope=scope, recognized=result.recognized, rules=explained
    )


_MARK = {"true": "✓", "false": "✗", "unknown": "?"}
_STATUS = {
    "applies": "✓ applies",
    "does not apply": "✗ does not apply",
    "undetermined": "? undetermined",
}


def render_explanation(kb: KnowledgeBase, explanation: Explanation) -> str:
    """The explanation as text for a terminal: every line written through `printable`, so that
    nothing of the scenario (or the pack) prints a control character (see engine/cleantext.py)."""
    lines = [f"Scenario {explanation.scenario_id or '(no id)'}: {explanation.scope}"]
    for item in explanation.recognized:
        steps = [f"{item.field[:-1]} {item.input}", *item.codes[1:]]
        if item.label.casefold() != item.input.casefold():
            steps.append(item.label)
        lines.append(f"  recognised: {' → '.join(steps)}")
    if not explanation.rules:
        lines.append("  no rule of the pack touches this scenario")
    for r in explanation.rules:
        lines.append("")
        lifecycle = "" if r.lifecycle == "active" else f", {r.lifecycle}"
        lines.append(f"{_STATUS[r.status]}: {r.rule} ({r.category}{lifecycle})")
        lines.append(f"  {r.statement}")
        for c in r.caveats:
            lines.append(f"  caveat {c.code}: “{c.support}”")
        if r.condition is None:
            lines.append("  when: always (a background statement)")
        else:
            _tree(kb, r.condition, "  ", "", lines)
    return "\n".join(printable(line) for line in lines) + "\n"


def _tree(kb: KnowledgeBase, node: Node, indent: str, branch: str, lines: list[str]) -> None:
    parts = [because_text(b, kb) for b in node.facts]
    missing = [n for n in node.needs if "(not recognised)" not in n]
    if missing:
        parts.append(f"not given: {', '.join(missing)}")
    parts += [n for n in node.needs if "(not recognised)" in n]
    detail = "; ".join(parts)
    head = f"{indent}{branch}{_MARK[node.value]} {node.test}"
    lines.append(f"{head}  ({detail})" if detail else head)
    if node.children:
        child_indent = indent + ("   " if branch.startswith("└") else "│  " if branch else "")
        for i, child in enumerate(node.children):
            last = i == len(node.children) - 1
            _tree(kb, child, child_indent, "└─ " if last else "├─ ", lines)
