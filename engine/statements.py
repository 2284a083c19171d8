"""From a match to a result: statements in a stable order, each with the facts behind it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from pydantic import BaseModel

from .bounded import remember
from .compiler import Match
from .conditions import FACT_PATHS, SYMBOL
from .facts import LIST_OF_KIND, Atom, Facts, Item
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
from .trusted import built

M = TypeVar("M", bound=BaseModel)

_FACT_ORDER = {
    "conditions": 0,
    "medications": 1,
    **{path: i + 2 for i, path in enumerate(FACT_PATHS.values())},
}


def _number(value: object) -> object:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# The most entries kb.reason_cache holds (oldest dropped first; see engine.bounded). A scenario
# item is part of its keys, so input fills it; the bundled pack over generated scenarios, whose
# items are spelt as the pack spells them, needs about 6,000.
REASONS_BOUND = 16_384


def reasons(kb: KnowledgeBase, facts: Facts, atoms: Iterable[Atom]) -> list[Because]:
    """The scenario facts behind some atoms (missing values and the background flag left out).

    The same atom meets the same scenario item again and again over a case library, so each
    pairing is worked out once per pack and remembered (a bounded cache: REASONS_BOUND)."""
    cache = kb.reason_cache
    ancestors = kb.vocabulary.ancestors
    found: list[tuple[tuple[object, ...], Because]] = []
    for atom in atoms:
        kind = atom.kind
        if kind == "has" or kind == "broad":
            concept = atom.prop[2:]
            exact = atom.prop[0] == "g"
            for item in facts.items:
                given = item.concept
                # (what cannot bear on the atom is passed over before a cache key is made)
                if given is None or (
                    given != concept and (exact or concept not in ancestors[given])
                ):
                    continue
                key = (atom.prop, item)  # (an item's reason depends on the atom's prop only)
                hit = cache.get(key, _MISSING)
                if hit is _MISSING:
                    hit = remember(cache, key, _item_reason(kb, atom, item), REASONS_BOUND)
                if hit is not None:
                    found.append(hit)
        elif kind == "lacks" or kind == "cmp" or kind == "sure":
            value = facts.values.get(atom.prop) if kind == "cmp" else None
            key = (atom, value)
            hit = cache.get(key, _MISSING)
            if hit is _MISSING:
                hit = remember(cache, key, _value_reason(kb, atom, value), REASONS_BOUND)
            found.append(hit)
    if len(found) < 2:
        return [because for _, because in found]
    found.sort(key=_first)
    out: list[Because] = []
    last = None
    for sort_key, because in found:
        if sort_key != last:  # two atoms can rest on the same fact
            out.append(because)
            last = sort_key
    return out


_MISSING = object()


def _first(pair: tuple[Any, Any]) -> Any:
    return pair[0]


def _item_reason(kb: KnowledgeBase, atom: Atom, item: Item) -> tuple[Any, Because] | None:
    vocab = kb.vocabulary
    concept = atom.prop[2:]
    field = LIST_OF_KIND[vocab.kind(concept)]
    if item.concept is None or item.field != field:
        return None
    if atom.prop.startswith("g:"):
        if item.concept != concept:
            return None
    elif concept not in vocab.closure(item.concept):
        return None
    label = vocab.label(concept)
    direct = item.concept == concept
    test = f"is {label}" if direct else f"is a kind of {label}"
    because = Because(
        fact=field,
        value=item.input,
        test=test,
        concept=item.concept,
        chain=[] if direct else list(vocab.chain(item.concept, concept)),
        codes=list(item.codes),
    )
    return (_FACT_ORDER[field], item.input, test), because


def _value_reason(kb: KnowledgeBase, atom: Atom, value: Any) -> tuple[Any, Because]:
    if atom.kind == "sure":
        vocab = kb.vocabulary
        concept = atom.prop[2:]
        field = LIST_OF_KIND[vocab.kind(concept)]
        test = f"every {field[:-1]} listed was recognised, and none could be {vocab.label(concept)}"
        return (_FACT_ORDER[field], "~", test), Because(
            fact=field, value=None, test=test, concept=concept
        )
    if atom.kind == "lacks":
        vocab = kb.vocabulary
        concept = atom.prop[2:]
        label = vocab.label(concept)
        field = LIST_OF_KIND[vocab.kind(concept)]
        noun = field[:-1]
        exact = atom.prop.startswith("g:")
        test = f"no {noun} is {label}" if exact else f"no {noun} is {label} or a kind of it"
        return (_FACT_ORDER[field], "", test), Because(
            fact=field, value=None, test=test, concept=concept
        )
    path = FACT_PATHS[atom.prop]
    test = f"{SYMBOL[atom.op]} {_number(atom.value)}"
    return (_FACT_ORDER[path], "", test), Because(fact=path, value=_number(value), test=test)


def needs(
    kb: KnowledgeBase, atoms: Iterable[Atom], facts: Facts, excepted: Iterable[str] = ()
) -> list[str]:
    """What would decide an undetermined rule: the scenario values it needs that were not given,
    and the items that could be what it needs absent (or, for an `except`, what it excepts):
    items not recognised, and items recognised only as something broader."""
    vocab = kb.vocabulary
    paths: set[str] = set()
    maybe: set[str] = set()
    broad: set[str] = set()
    for a in atoms:
        if a.kind == "missing":
            paths.add(FACT_PATHS[a.prop])
        elif a.kind == "maybe":
            maybe.add(a.prop[2:])
        elif a.kind == "broad":
            broad.add(a.prop[2:])  # given as a concept broader than one the rule excepts
    out = sorted(paths, key=lambda p: _FACT_ORDER[p])
    if not maybe and not broad:
        return out
    lists = {LIST_OF_KIND[vocab.kind(c)] for c in maybe}
    found: list[tuple[int, str, str]] = []
    for u in facts.unknown:
        if u.field in lists or u.home in lists:
            text = f'{u.field}: "{u.input}" (not recognised)'
            if u.home is not None:
                text = f'{u.field}: "{u.input}" (belongs under {u.home}: not read as one)'
            found.append((_FACT_ORDER[u.field], u.input, text))
    for field, given, could in facts.broad:
        which = [vocab.label(c) for c in sorted(maybe & could, key=vocab.order.__getitem__)]
        if which:
            found.append(
                (_FACT_ORDER[field], given, f'{field}: "{given}" (could be {" or ".join(which)})')
            )
    for item in facts.items:
        if item.concept in broad:
            which = [
                vocab.label(e)
                for e in excepted
                if any(item.concept in vocab.ancestors[d] for d in vocab.descendants[e])
            ]
            text = f'{item.field}: "{item.input}" (could be {" or ".join(which)})'
            found.append((_FACT_ORDER[item.field], item.input, text))
    return out + [text for *_, text in sorted(set(found))]


def _item_reports(
    kb: KnowledgeBase, item: Item, spoken: frozenset[str]
) -> tuple[Recognized | None, NotCovered | None]:
    """How a scenario item was recognised, and whether the pack has nothing to say about it."""
    if item.concept is None:
        reason = "a valid code that no concept of this pack stands for"
        return None, NotCovered(
            field=item.field, input=item.input, concept=None, label=item.label, reason=reason
        )
    recognized = Recognized(
        field=item.field,
        input=item.input,
        concept=item.concept,
        label=item.label,
        matched_by=item.matched_by,
        codes=list(item.codes),
        verified=item.verified,
    )
    if item.concept in spoken:
        return recognized, None
    reason = f"no rule of this pack speaks to {item.label}"
    return recognized, NotCovered(
        field=item.field, input=item.input, concept=item.concept, label=item.label, reason=reason
    )


def _validated(cls: type[M], values: dict[str, Any]) -> M:
    return cls(**values)


def build_result(
    kb: KnowledgeBase,
    facts: Facts,
    match: Match,
    include_background: bool,
    include_draft: bool = False,
    *,
    plain: bool = False,
) -> Result:
    """The result of a match. Its parts are made by the engine from a compiled pack, so they are
    not validated again (engine.trusted) unless `plain` asks for the validating constructors
    (the path the fast one is tested against); the two give equal results."""
    make = _validated if plain else built
    drafts: frozenset[int] = frozenset() if include_draft else kb.drafts
    skipped = drafts if include_background else kb.background | drafts
    parts = kb.statement_parts
    statements = []
    in_order = match.ordered
    place = kb.order.__getitem__
    for index in match.applies if in_order else sorted(match.applies, key=place):
        if index in skipped:
            continue
        values = dict(parts[index])  # (in the order Statement declares its fields)
        values["caveats"] = list(values["caveats"])
        values["because"] = reasons(kb, facts, match.applies[index])
        del values["needs"]
        statements.append(make(Statement, values))
    undetermined = []
    for index in match.undetermined if in_order else sorted(match.undetermined, key=place):
        if index in drafts:
            continue
        atoms = match.undetermined[index]
        values = dict(parts[index])  # (in the order Undetermined declares its fields)
        values["caveats"] = list(values["caveats"])
        values["needs"] = needs(kb, atoms, facts, kb.excepted[index])
        values["because"] = reasons(kb, facts, atoms)
        undetermined.append(make(Undetermined, values))
    not_covered = []
    recognized = []
    cache = kb.reason_cache
    spoken = kb.spoken_with_drafts if include_draft else kb.spoken
    for item in facts.items:
        key = ("item", item, include_draft)
        hit = cache.get(key)
        if hit is None:
            hit = remember(cache, key, _item_reports(kb, item, spoken), REASONS_BOUND)
        if hit[0] is not None:
            recognized.append(hit[0])
        if hit[1] is not None:
            not_covered.append(hit[1])
    unrecognized = [
        make(
            Unrecognized,
            {
                "field": u.field,
                "input": u.input,
                "reason": u.reason,
                "suggestions": list(u.suggestions),
            },
        )
        for u in facts.unknown
    ]
    return make(
        Result,
        {
            "scenario_id": facts.scenario_id,
            "statements": statements,
            "undetermined": undetermined,
            "not_covered": not_covered,
            "unrecognized": unrecognized,
            "recognized": recognized,
            "background_included": include_background,
            "knowledge_base": kb.ref,
        },
    )
