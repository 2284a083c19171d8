"""From a validated scenario to facts: concepts recognised, closed under is_a, and plain values.

This is the normalisation step of the pipeline (scenario -> facts -> matcher -> result). It also
defines `Atom`, the unit test on facts that both matchers report as the reason a rule applied.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from . import terminology
from .bounded import remember
from .scenario import Code, Scenario
from .vocabulary import Vocabulary

ListName = Literal["conditions", "medications"]
KIND_OF_LIST: dict[str, str] = {"conditions": "condition", "medications": "drug"}
LIST_OF_KIND: dict[str, ListName] = {"condition": "conditions", "drug": "medications"}


class Item(NamedTuple):
    """A scenario condition or medication that was recognised (concept None: a valid code the
    vocabulary does not bind, such as an unrelated ICD-10-CM code). A code bound to several
    concepts gives one item per concept."""

    field: ListName
    input: str
    concept: str | None
    label: str
    matched_by: str
    codes: tuple[str, ...] = ()
    verified: bool | None = None  # matched by a code: was its binding checked?
    system: str | None = None  # matched by a code: its code system


class Unknown(NamedTuple):
    """A scenario condition or medication that was not recognised (`home`: the list it belongs
    in, when it was recognised as a thing of the other list)."""

    field: ListName
    input: str
    reason: str
    suggestions: tuple[str, ...] = ()
    home: ListName | None = None


class Facts(NamedTuple):
    """A scenario's facts: what its items were recognised as, and its values. (A named tuple:
    one is made per evaluation, and a tuple is the cheapest immutable record to make.)"""

    scenario_id: str | None
    items: tuple[Item, ...]
    unknown: tuple[Unknown, ...]
    given: frozenset[str]  # concepts the scenario names
    closure: frozenset[str]  # those and all their ancestors
    values: dict[str, Any]  # age, duration_years, line, intent, dose, response: only those given
    # What is not known to be absent: the lists ("conditions", "medications") that hold an item
    # not recognised (or one that belongs in them, listed in the other), and the concepts some
    # recognised item could be without being known to be (with all they are kinds of).
    unrecognized: frozenset[str] = frozenset()
    could_be: frozenset[str] = frozenset()
    # (field, input, what it could be) of each item recognised only broadly, for `needs`
    broad: tuple[tuple[str, str, frozenset[str]], ...] = ()


class Atom(NamedTuple):
    """One test on facts.

    kind: "has" (prop present), "lacks" (prop absent), "cmp" (prop op value), "missing" (a scenario
    value not given: what makes a rule undetermined), "bg" (background requested), and for an
    absence a rule rests on, "sure" (no item could be the concept: the absence is known) or
    "maybe" (an item could be it: one not recognised, or one recognised only as something
    broader; the absence is unknown), and for an `except` test "broad" (an item is given as a
    concept broader than an excepted one: the test is unknown).
    prop: "c:<concept>" (the concept or a descendant is given), "g:<concept>" (exactly this concept
    is given), "m:<concept>" (an item could be the concept or a descendant), or a value name (age,
    duration_years, line, intent, dose, response).
    """

    kind: str
    prop: str
    op: str = ""
    value: Any = None

    def sort_key(self) -> tuple[Any, ...]:
        # Presence tests first: durable_rules indexes them by property name, so a rule whose first
        # test names a concept the scenario lacks costs nothing. Absence tests last.
        rank = 3 if self.op == "ne" else _RANK[self.kind]
        return (rank, self.prop, self.op, str(self.value))


_RANK = {"bg": 0, "has": 1, "broad": 1, "maybe": 1, "cmp": 2, "lacks": 4, "sure": 4, "missing": 5}


def concept_prop(concept: str, exact: bool = False) -> str:
    return ("g:" if exact else "c:") + concept


def maybe_prop(concept: str) -> str:
    """The property "an item could be this concept, or a kind of it" ("m:phenytoin")."""
    return "m:" + concept


def _resolve_text(vocab: Vocabulary, field: ListName, text: str) -> list[Item] | Unknown:
    want = KIND_OF_LIST[field]
    hit = vocab.lookup_text(text)
    if hit is not None:
        concept = vocab.concepts[hit.concept]
        if concept.kind == want:
            return [Item(field, text, concept.id, concept.label, hit.matched_by)]
        return Unknown(
            field,
            text,
            f"{concept.label!r} is a {concept.kind}, not a {want}; list it under "
            f"{LIST_OF_KIND[concept.kind]}",
            home=LIST_OF_KIND[concept.kind],
        )
    ambiguous = vocab.ambiguity(text)
    if ambiguous is not None:
        labels = tuple(vocab.label(c) for c in ambiguous.concepts if c in vocab)
        return Unknown(
            field,
            text,
            f"ambiguous: it could be {' or '.join(labels)}; name the one meant "
            f"({ambiguous.reason})",
            labels,
        )
    suggestions = tuple(vocab.suggestions(text, kind=want))  # type: ignore[arg-type]
    reason = f"not a {want} this pack knows"
    if terminology.looks_like_icd(text):
        reason += f"; to give a code write {{code: {text.strip().upper()}, system: ICD-10-CM}}"
    return Unknown(field, text, reason, suggestions)


# Which list each code system's codes belong in.
_SYSTEM_LIST: dict[str, ListName] = {
    "ICD-10-CM": "conditions",
    "ATC": "medications",
    "RxNorm": "medications",
}


def _resolve_code(vocab: Vocabulary, field: ListName, code: Code) -> list[Item] | Unknown:
    want = KIND_OF_LIST[field]
    shown = code.display
    home = _SYSTEM_LIST.get(code.system)
    if home is not None and home != field:
        return Unknown(
            field, shown, f"{code.system} codes name {home}; list it under {home}", home=home
        )
    hits = vocab.lookup_code(code.system, code.code)
    if hits:
        items = []
        for hit in hits:
            concept = vocab.concepts[hit.concept]
            if concept.kind != want:
                return Unknown(
                    field,
                    shown,
                    f"{shown} is {concept.label!r}, a {concept.kind}; list it under "
                    f"{LIST_OF_KIND[concept.kind]}",
                    home=LIST_OF_KIND[concept.kind],
                )
            verified = vocab.code_verified(code.system, hit.code_path[-1])
            items.append(
                Item(
                    field,
                    shown,
                    concept.id,
                    concept.label,
                    "code",
                    hit.code_path,
                    verified,
                    code.system,
                )
            )
        return items
    if code.system == "ICD-10-CM":
        if not terminology.looks_like_icd(code.code):
            return Unknown(field, shown, "not shaped like an ICD-10-CM code (e.g. G25.81)")
        description = terminology.icd_description(code.code)
        if description is not None:
            norm = terminology.normalise_icd(code.code)
            return [Item(field, shown, None, description, "code", (norm,), True, code.system)]
        near = terminology.icd_nearest_valid(code.code)
        hint = (f"{near} ({terminology.icd_description(near)})",) if near else ()
        return Unknown(field, shown, "not a valid ICD-10-CM code", hint)
    return Unknown(field, shown, f"no concept of this pack carries {code.system} code {code.code}")


# The most scenario items (a list and a spelling or a code) a vocabulary remembers the reading of
# (oldest dropped first; see engine.bounded): a case library gives the same few again and again.
ITEMS_BOUND = 8192


def _read(
    vocab: Vocabulary, field: ListName, entry: str | Code, memo: bool
) -> tuple[Item, ...] | Unknown:
    """What a scenario item was recognised as, worked out once per vocabulary (with `memo`)."""
    key = (field, entry.system, entry.code) if isinstance(entry, Code) else (field, entry)
    if memo:
        found = vocab.items_read.get(key)
        if found is not None:
            return found  # type: ignore[no-any-return]
    got = (
        _resolve_code(vocab, field, entry)
        if isinstance(entry, Code)
        else _resolve_text(vocab, field, entry)
    )
    read = tuple(got) if isinstance(got, list) else got
    return remember(vocab.items_read, key, read, ITEMS_BOUND) if memo else read


def normalise(scenario: Scenario, vocab: Vocabulary, *, memo: bool = True) -> Facts:
    """Recognise every condition and medication and collect the scenario's values. With `memo`,
    each item's reading is remembered by the vocabulary (bounded); without, it is worked out
    afresh (the plain path the remembered one is tested against)."""
    items: dict[tuple[str, str, str | None], Item] = {}
    unknown: dict[tuple[str, str], Unknown] = {}
    for field in ("conditions", "medications"):
        for entry in getattr(scenario, field):
            got = _read(vocab, field, entry, memo)  # type: ignore[arg-type]
            # The same item twice (in any case) is reported once, under the same spelling
            # whatever the order of the list: the least in code-point order.
            if not isinstance(got, Unknown):
                for item in got:
                    key = (item.field, item.input.casefold(), item.concept)
                    if key not in items or item.input < items[key].input:
                        items[key] = item
            else:
                key2 = (got.field, got.input.casefold())
                if key2 not in unknown or got.input < unknown[key2].input:
                    unknown[key2] = got
    if not items:
        given = closure = could_be = _NOTHING
        broad: list[tuple[str, str, frozenset[str]]] = []
    else:
        given = frozenset(i.concept for i in items.values() if i.concept is not None)
        closure = frozenset().union(*map(vocab.closure, given)) if given else _NOTHING
        broad = []
        for item in items.values():
            could = vocab.could_be(item.concept) if item.concept is not None else _NOTHING
            if item.system == "ICD-10-CM":
                could |= vocab.could_be_code(item.codes[0])
            if could:
                broad.append((item.field, item.input, could))
        could_be = frozenset().union(*(c for _, _, c in broad)) if broad else _NOTHING
    values: dict[str, Any] = {}
    patient, therapy = scenario.patient, scenario.therapy
    if patient is not None and patient.age is not None:
        values["age"] = patient.age
    if therapy is not None:
        for name, value in therapy.__dict__.items():  # (intent, duration_years, line, ...)
            if value is not None:
                values[name] = value
    return Facts(
        scenario.id,
        tuple(items[k] for k in sorted(items, key=_item_order)) if items else (),
        tuple(unknown[k] for k in sorted(unknown)) if unknown else (),
        given,
        closure,
        values,
        frozenset(u.field for u in unknown.values())
        | frozenset(u.home for u in unknown.values() if u.home is not None)
        if unknown
        else _NOTHING,
        could_be,
        tuple(sorted(broad, key=_broad_order)) if broad else (),
    )


_NOTHING: frozenset[str] = frozenset()


def _item_order(key: tuple[str, str, str | None]) -> tuple[str, str, str]:
    return (key[0], key[1], key[2] or "")


def _broad_order(entry: tuple[str, str, frozenset[str]]) -> tuple[str, str]:
    return (entry[0], entry[1])
