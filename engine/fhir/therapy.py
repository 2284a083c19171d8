"""The therapy an order gives: intent, duration and dose, as far as the order says them.

- `intent` from `courseOfTherapyType`: continuous is long-term, acute is acute; another course
  (seasonal) has no intent of the scenario's and is said so.
- `duration_years` from the dosage's `timing.repeat.boundsDuration` or `boundsPeriod`, else from
  `dispenseRequest.expectedSupplyDuration` times (1 + `numberOfRepeatsAllowed`), else (for a
  MedicationStatement) from `effectivePeriod`: to its end, or, when it has none, to the date the
  record is read as of (the use so far).
- `dose` is never guessed: a pack defines no dose bands a quantity could be read in, so an order's
  `doseAndRate` is said to be unread and the dose stays unknown.
What cannot be read stays unknown and is said; the engine's three-valued logic then reports what
it would need.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from ..scenario import MAX_YEARS
from . import elements as el
from .elements import Unreadable

COURSE = {"continuous": "long-term", "acute": "acute"}


def therapy_of(
    res: dict[str, Any], as_of: dt.date, problem: Callable[[str], None]
) -> dict[str, Any]:
    """The scenario's `therapy` from an order or statement; `problem` is told what cannot be
    read."""
    therapy: dict[str, Any] = {}
    try:
        course = el.status(res.get("courseOfTherapyType"), "courseOfTherapyType")
    except Unreadable as exc:
        problem(f"{exc}; intent left unknown")
        course = None
    if course is not None:
        if course in COURSE:
            therapy["intent"] = COURSE[course]
        else:
            problem(f"courseOfTherapyType {course[:40]!r} has no intent; left unknown")
    try:
        years = duration(res, as_of)
    except Unreadable as exc:
        problem(f"{exc}; the duration is left unknown")
        years = None
    if years is not None:
        if years > MAX_YEARS:
            problem(f"a duration over {MAX_YEARS} years; left unknown")
        else:
            therapy["duration_years"] = round(years, 4)
    dosage = el.as_list(res.get("dosageInstruction") or res.get("dosage"))
    if any(isinstance(d, dict) and d.get("doseAndRate") is not None for d in dosage):
        problem(
            "doseAndRate: the pack defines no dose bands to read a quantity in, so the dose is "
            "not read as low, standard or high; left unknown"
        )
    return therapy


def duration(res: dict[str, Any], as_of: dt.date) -> float | None:
    """The therapy's duration in years: the dosage's bounds, else the supply ordered, else (for a
    MedicationStatement) its effective period, open-ended periods up to `as_of`."""
    for i, dosage in enumerate(el.as_list(res.get("dosageInstruction") or res.get("dosage"))):
        if not isinstance(dosage, dict):
            raise Unreadable(f"dosageInstruction[{i}] is {el.kind(dosage)}, not a Dosage")
        timing = dosage.get("timing")
        repeat = timing.get("repeat") if isinstance(timing, dict) else None
        if not isinstance(repeat, dict):
            continue
        where = f"dosageInstruction[{i}].timing.repeat"
        if repeat.get("boundsDuration") is not None:
            return el.days(repeat["boundsDuration"], f"{where}.boundsDuration") / 365.25
        if repeat.get("boundsPeriod") is not None:
            years = _period(repeat["boundsPeriod"], f"{where}.boundsPeriod")
            if years is not None:
                return years
    supply = res.get("dispenseRequest")
    if isinstance(supply, dict) and supply.get("expectedSupplyDuration") is not None:
        each = el.days(supply["expectedSupplyDuration"], "dispenseRequest.expectedSupplyDuration")
        repeats = el.number(
            supply.get("numberOfRepeatsAllowed"), "dispenseRequest.numberOfRepeatsAllowed"
        )
        if repeats is not None and (repeats < 0 or repeats != int(repeats)):
            raise Unreadable("dispenseRequest.numberOfRepeatsAllowed is not a whole number")
        return each * (1 + int(repeats or 0)) / 365.25
    if res.get("effectivePeriod") is not None:
        return _period(res["effectivePeriod"], "effectivePeriod", open_until=as_of)
    return None


def _period(period: Any, what: str, open_until: dt.date | None = None) -> float | None:
    """A Period's length in years; one without an end runs to `open_until`, if given."""
    if not isinstance(period, dict):
        raise Unreadable(f"{what} is {el.kind(period)}, not a Period")
    start = el.date(period.get("start"), f"{what}.start")
    end = el.date(period.get("end"), f"{what}.end")
    if end is None and open_until is not None and start is not None and start[0] <= open_until:
        end = (open_until, open_until)
    if start is None or end is None:
        return None
    if end[1] < start[0]:
        raise Unreadable(f"{what} ends before it starts")
    return (end[1] - start[0]).days / 365.25
