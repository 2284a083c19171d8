"""From a match to a result: statements in a stable order, each with the facts behind it."""

from __future__ import annotations

from collections.abc import Iterable

from .compiler import Match
from .conditions import FACT_PATHS, SYMBOL
from .facts import LIST_OF_KIND, Atom, Facts
from .knowledge_base import KnowledgeBase
from .result import (
    Because,
    NotCovered,
    Recognized,
    Result,
    Statement,
    Undetermined,
    Unrecognized,
)

_FACT_ORDER = {
    "conditions": 0,
    "medications": 1,
    **{path: i + 2 for i, path in enumerate(FACT_PATHS.values())},
}


def _number(value: object) -> object:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def reasons(kb: KnowledgeBase, facts: Facts, atoms: Iterable[Atom]) -> list[Because]:
    """The scenario facts behind some atoms (missing values and the background flag left out)."""
    vocab = kb.vocabulary
    out: dict[tuple[object, ...], Because] = {}
    for atom in atoms:
        if atom.kind in ("has", "lacks"):
            exact = atom.prop.startswith("g:")
            concept = atom.prop[2:]
            label = vocab.label(concept)
            field = LIST_OF_KIND[vocab.kind(concept)]
            if atom.kind == "lacks":
                noun = field[:-1]
                test = f"no {noun} is {label}" if exact else f"no {noun} is {label} or a kind of it"
                b = Because(fact=field, value=None, test=test, concept=concept)
                out[(field, "", test)] = b
                continue
            for item in facts.items:
                if item.concept is None or item.field != field:
                    continue
                if exact and item.concept != concept:
                    continue
                if not exact and concept not in vocab.closure(item.concept):
                    continue
                direct = item.concept == concept
                test = f"is {label}" if direct else f"is a kind of {label}"
                b = Because(
                    fact=field,
                    value=item.input,
                    test=test,
                    concept=item.concept,
                    chain=[] if direct else list(vocab.chain(item.concept, concept)),
                    codes=list(item.codes),
                )
                out[(field, item.input, test)] = b
        elif atom.kind == "cmp":
            path = FACT_PATHS[atom.prop]
            test = f"{SYMBOL[atom.op]} {_number(atom.value)}"
            b = Because(fact=path, value=_number(facts.values[atom.prop]), test=test)
            out[(path, "", test)] = b
    return [
        out[k]
        for k in sorted(out, key=lambda k: (_FACT_ORDER.get(str(k[0]), 99), str(k[1]), str(k[2])))
    ]


def needs(atoms: Iterable[Atom]) -> list[str]:
    return sorted(
        {FACT_PATHS[a.prop] for a in atoms if a.kind == "missing"}, key=lambda p: _FACT_ORDER[p]
    )


def build_result(kb: KnowledgeBase, facts: Facts, match: Match, include_background: bool) -> Result:
    rules = kb.rules
    statements = []
    for index in sorted(match.applies, key=kb.order.__getitem__):
        rule = rules[index]
        if rule.background and not include_background:
            continue
        statements.append(
            Statement(
                rule=rule.id,
                category=rule.category,
                text=rule.statement,
                caveats=kb.caveat_notes[index],
                evidence=kb.evidence_notes[index],
                because=reasons(kb, facts, match.applies[index]),
            )
        )
    undetermined = []
    for index in sorted(match.undetermined, key=kb.order.__getitem__):
        rule = rules[index]
        atoms = match.undetermined[index]
        undetermined.append(
            Undetermined(
                rule=rule.id,
                category=rule.category,
                text=rule.statement,
                caveats=kb.caveat_notes[index],
                evidence=kb.evidence_notes[index],
                needs=needs(atoms),
                because=reasons(kb, facts, atoms),
            )
        )
    not_covered = []
    recognized = []
    for item in facts.items:
        if item.concept is None:
            not_covered.append(
                NotCovered(
                    field=item.field,
                    input=item.input,
                    concept=None,
                    label=item.label,
                    reason="a valid code that no concept of this pack stands for",
                )
            )
            continue
        recognized.append(
            Recognized(
                field=item.field,
                input=item.input,
                concept=item.concept,
                label=item.label,
                matched_by=item.matched_by,
                codes=list(item.codes),
            )
        )
        if item.concept not in kb.spoken:
            not_covered.append(
                NotCovered(
                    field=item.field,
                    input=item.input,
                    concept=item.concept,
                    label=item.label,
                    reason=f"no rule of this pack speaks to {item.label}",
                )
            )
    unrecognized = [
        Unrecognized(field=u.field, input=u.input, reason=u.reason, suggestions=list(u.suggestions))
        for u in facts.unknown
    ]
    return Result(
        scenario_id=facts.scenario_id,
        statements=statements,
        undetermined=undetermined,
        not_covered=not_covered,
        unrecognized=unrecognized,
        recognized=recognized,
        background_included=include_background,
        knowledge_base=kb.ref,
    )
