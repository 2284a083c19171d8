"""A patient's age from their record: completed years on a date, partial birth dates, and a
deceased patient's record read as of the day they died."""

from __future__ import annotations

import datetime as dt

from ..conditions import HOLDS, AgeTest, leaves
from ..knowledge_base import KnowledgeBase
from ..scenario import MAX_AGE
from . import elements as el
from .elements import Unreadable
from .resources import Found, State, Unmapped, name_of


def age_tests(kb: KnowledgeBase) -> list[tuple[str, float]]:
    """Every comparison the pack's rules make on the patient's age."""
    out = []
    for rule in kb.rules:
        for leaf in leaves(rule.when):
            if isinstance(leaf, AgeTest):
                out.extend(leaf.age.tests())
    return out


def _years(born: dt.date, on: dt.date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def deceased(state: State, found: Found) -> None:
    """A deceased patient's record is read as of the day they died, when it says which."""
    res = found.resource
    try:
        died = el.date(res.get("deceasedDateTime"), "deceasedDateTime")
    except Unreadable as exc:
        state.problem(name_of(found), f"{exc}; the record is read as of {state.as_of}")
        return
    if died is not None and died[0] < state.as_of:
        state.as_of = died[0]
        state.notes.append(
            Unmapped(
                where=name_of(found),
                reason=f"the patient died on {died[0]}: the record (age, durations so far) is "
                "read as of that day",
            )
        )
    elif died is None and res.get("deceasedBoolean") is True:
        state.notes.append(
            Unmapped(
                where=name_of(found),
                reason=f"the patient is recorded as deceased, on a day not given: the record is "
                f"read as of {state.as_of}",
            )
        )


def age_of(state: State, found: Found) -> float | None:
    try:
        span = el.date(found.resource.get("birthDate"), "birthDate")
    except Unreadable as exc:
        state.problem(name_of(found), f"{exc}; the age is left unknown")
        return None
    if span is None:
        return None
    earliest, latest = span
    if earliest > state.as_of:
        state.problem(name_of(found), f"birthDate is after {state.as_of}; the age is left unknown")
        return None
    latest = min(latest, state.as_of)  # born by as_of: "2026" on 2026-11-25 is age 0
    high, low = _years(earliest, state.as_of), _years(latest, state.as_of)
    if high > MAX_AGE:
        state.problem(name_of(found), f"birthDate gives an age over {MAX_AGE}; left unknown")
        return None
    if high != low:
        split = [
            f"{op} {value:g}"
            for op, value in dict.fromkeys(age_tests(state.kb))
            if HOLDS[op](low, value) != HOLDS[op](high, value)
        ]
        if split:
            state.problem(
                name_of(found),
                f"birthDate {found.resource.get('birthDate')} gives an age of {low} or {high} "
                f"on {state.as_of}, and the pack's age test ({', '.join(split)}) differs between "
                "them; the age is left unknown",
            )
            return None
    return low
