"""Why a rule applied, did not apply, or is undetermined: its condition tree, every leaf's value and
the scenario facts behind it (with the is_a chain and the ICD-10-CM codes walked)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

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
from .evaluate import run
from .facts import Facts, normalise
from .knowledge_base import KnowledgeBase
from .render import because_text
from .result import Because, Recognized
from .rules import Rule
from .scenario import parse_scenario
from .statements import needs, reasons

Value = Literal["true", "false", "unknown"]
Status = Literal["applies", "does not apply", "undetermined"]
_VALUE = {True: "true", False: "false", None: "unknown"}


class Node(BaseModel):
    test: str
    value: Value
    facts: list[Because] = []
    needs: list[str] = []
    children: list[Node] = []


class RuleExplanation(BaseModel):
    rule: str
    category: str
    statement: str
    status: Status
    condition: Node | None  # None for a background rule (`when: always`)
    caveats: list[str]
    quote: str


class Explanation(BaseModel):
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


def explain_node(kb: KnowledgeBase, node: Any, facts: Facts) -> Node:
    value, support = kb.reference.evaluate(node, facts)
    if isinstance(node, AllOf | AnyOf | NotOf):
        name = (
            "all of" if isinstance(node, AllOf) else "any of" if isinstance(node, AnyOf) else "not"
        )
        return Node(
            test=name,
            value=_VALUE[value],
            children=[explain_node(kb, child, facts) for child in children(node)],
        )
    return Node(
        test=leaf_text(kb, node),
        value=_VALUE[value],
        facts=reasons(kb, facts, support),
        needs=needs(support),
    )


def touches(kb: KnowledgeBase, rule: Rule, facts: Facts) -> bool:
    """The rule tests a concept the scenario has, or one below a concept the scenario has."""
    near = set(facts.closure)
    for concept in facts.given:
        near |= kb.vocabulary.descendants.get(concept, {concept})
    return bool(concepts_mentioned(rule.when) & near)


def explain(
    kb: KnowledgeBase, scenario: Any, rule_id: str | None = None, include_background: bool = False
) -> Explanation:
    """Explain one rule, or (without `rule_id`) the rules that applied, the undetermined ones and
    the near misses: rules that touch a concept of the scenario but did not apply."""
    if rule_id is not None and rule_id not in kb.rule_index:
        raise KeyError(rule_id)
    parsed = parse_scenario(scenario)
    facts = normalise(parsed, kb.vocabulary)
    result = run(kb, parsed, include_background=True)
    applied = {s.rule for s in result.statements}
    undetermined = {u.rule for u in result.undetermined}
    chosen: list[Rule] = []
    for rule in kb.rules:
        if rule_id is not None:
            if rule.id == rule_id:
                chosen.append(rule)
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
        explained.append(
            RuleExplanation(
                rule=rule.id,
                category=rule.category,
                statement=rule.statement,
                status=status,
                condition=None if rule.background else explain_node(kb, rule.when, facts),
                caveats=list(rule.caveats),
                quote=rule.evidence.quote,
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
        lines.append(f"{_STATUS[r.status]}: {r.rule} ({r.category})")
        lines.append(f"  {r.statement}")
        if r.caveats:
            lines.append(f"  caveats: {', '.join(r.caveats)}")
        if r.condition is None:
            lines.append("  when: always (a background statement)")
        else:
            _tree(kb, r.condition, "  ", "", lines)
    return "\n".join(lines) + "\n"


def _tree(kb: KnowledgeBase, node: Node, indent: str, branch: str, lines: list[str]) -> None:
    detail = ""
    if node.facts:
        detail = "; ".join(because_text(b, kb) for b in node.facts)
    elif node.needs:
        detail = f"not given: {', '.join(node.needs)}"
    head = f"{indent}{branch}{_MARK[node.value]} {node.test}"
    lines.append(f"{head}  ({detail})" if detail else head)
    if node.children:
        child_indent = indent + ("   " if branch.startswith("└") else "│  " if branch else "")
        for i, child in enumerate(node.children):
            last = i == len(node.children) - 1
            _tree(kb, child, child_indent, "└─ " if last else "├─ ", lines)
