"""Reading FHIR R4 elements the way real requests hold them: tolerant where the shape does not
matter (a `doseAndRate` object instead of an array, an STU3-era `clinicalStatus` string), strict
where it does (a number that is not one, a date that is not a date).

Every reader returns a value, or raises `Unreadable` with what was wrong; none of them guesses.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterator
from typing import Any

from ..scenario import kind_of

# FHIR code system URIs and the scenario's names for them.
SYSTEMS = {
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD-10-CM",
    "http://hl7.org/fhir/sid/icd-10": None,  # WHO ICD-10: not ICD-10-CM, not read as it
    "http://snomed.info/sct": "SNOMED-CT",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm",
    "http://www.whocc.no/atc": "ATC",
}
SYSTEM_URIS = {name: uri for uri, name in SYSTEMS.items() if name}

# UCUM duration codes (and the unit words seen in requests) in days.
_DAYS = {
    "s": 1 / 86400,
    "min": 1 / 1440,
    "h": 1 / 24,
    "d": 1.0,
    "wk": 7.0,
    "mo": 365.25 / 12,
    "a": 365.25,
}
_UNIT_WORDS = {
    "second": "s",
    "minute": "min",
    "hour": "h",
    "day": "d",
    "week": "wk",
    "month": "mo",
    "year": "a",
}
# A FHIR date, or the date of a dateTime; nothing else after it ("20100214" is not the year 2010).
_DATE = re.compile(r"^([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?(?=$|T[0-9])")
# What no scenario text may hold: control characters and lone surrogates.
UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_SEMANTIC_TAG = re.compile(r"\s*\((disorder|finding|situation|morphologic abnormality)\)\s*$")


class Unreadable(ValueError):
    """An element that is there but cannot be read; the message says what it holds."""


def kind(value: Any) -> str:
    """What a JSON author would call the type of a value."""
    return kind_of(value, ("an object", "an array"))


def as_list(value: Any) -> list[Any]:
    """An array element, read also when a single object was sent instead (seen in published
    CDS Hooks examples: `doseAndRate` as an object)."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def text(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Unreadable(f"{what} is {kind(value)}, not text")
    return value


def number(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unreadable(f"{what} is {kind(value)}, not a number")
    try:
        number = float(value)  # an integer of 309 digits or more is no float
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise Unreadable(f"{what} is not a finite number")
    return number


def codings(concept: Any, what: str) -> Iterator[tuple[str | None, str, str]]:
    """(scenario system or None, code, display) of each coding of a CodeableConcept."""
    if concept is None:
        return
    if not isinstance(concept, dict):
        raise Unreadable(f"{what} is {kind(concept)}, not a CodeableConcept")
    for i, coding in enumerate(as_list(concept.get("coding"))):
        if not isinstance(coding, dict):
            raise Unreadable(f"{what}.coding[{i}] is {kind(coding)}, not a Coding")
        system, code, display = coding.get("system"), coding.get("code"), coding.get("display")
        if (  # the common shape, read at once
            type(system) is str
            and type(code) is str
            and type(display) is str
            and code.isprintable()
            and code == code.strip()
            and code
        ):
            yield SYSTEMS.get(system), code, display
            continue
        system = text(coding.get("system"), f"{what}.coding[{i}].system")
        code = text(coding.get("code"), f"{what}.coding[{i}].code")
        display = text(coding.get("display"), f"{what}.coding[{i}].display") or ""
        code = (code or "").strip()
        if UNPRINTABLE.search(code):
            raise Unreadable(f"{what}.coding[{i}].code holds a control character or lone surrogate")
        if code:
            yield SYSTEMS.get(system or ""), code, display


def status(value: Any, what: str) -> str | None:
    """A status held as a CodeableConcept (R4) or as a plain code (STU3, still sent)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    found = [code for _, code, _ in codings(value, what)]
    if not found and isinstance(value, dict) and value.get("coding") is None:
        raise Unreadable(f"{what} has no coding")
    return found[0] if found else None


def label(concept: Any, what: str) -> str | None:
    """A CodeableConcept's text, else its first coding's display, without SNOMED CT's semantic
    tag ("Epilepsy (disorder)" -> "Epilepsy")."""
    if not isinstance(concept, dict):
        return None
    words = text(concept.get("text"), f"{what}.text")
    if not words:
        words = next((d for _, _, d in codings(concept, what) if d), None)
    return _SEMANTIC_TAG.sub("", words).strip() if words else None


def date(value: Any, what: str) -> tuple[dt.date, dt.date] | None:
    """The earliest and latest day a FHIR date (or dateTime) can be: "2008" is 2008-01-01 to
    2008-12-31, "2008-02" the days of that February."""
    words = text(value, what)
    if words is None:
        return None
    found = _DATE.match(words)
    if not found:
        raise Unreadable(f"{what} {words[:40]!r} is not a date (YYYY, YYYY-MM or YYYY-MM-DD)")
    year, month, day = found.groups()
    try:
        if day:
            d = dt.date(int(year), int(month), int(day))
            return d, d
        if month:
            first = dt.date(int(year), int(month), 1)
            nxt = dt.date(int(year) + (int(month) == 12), int(month) % 12 + 1, 1)
            return first, nxt - dt.timedelta(days=1)
        return dt.date(int(year), 1, 1), dt.date(int(year), 12, 31)
    except ValueError:
        raise Unreadable(f"{what} {words[:40]!r} is not a calendar date") from None


def days(quantity: Any, what: str) -> float | None:
    """A Duration (or Quantity of time) in days."""
    if quantity is None:
        return None
    if not isinstance(quantity, dict):
        raise Unreadable(f"{what} is {kind(quantity)}, not a Duration")
    value = number(quantity.get("value"), f"{what}.value")
    if value is None:
        raise Unreadable(f"{what} has no value")
    if value < 0:
        raise Unreadable(f"{what}.value is negative")
    unit = text(quantity.get("code"), f"{what}.code") or text(quantity.get("unit"), f"{what}.unit")
    per_day = _DAYS.get(unit or "")
    if per_day is None and unit:
        per_day = _DAYS.get(_UNIT_WORDS.get(unit.lower().rstrip("s"), ""))
    if per_day is None:
        raise Unreadable(f"{what} has no time unit it can be read in (unit {unit!r})")
    return value * per_day


def semantic_free(words: str) -> str:
    return _SEMANTIC_TAG.sub("", words).strip()


_BRAND = re.compile(r"\[[^\]]*\]")
_BEFORE_STRENGTH = re.compile(r"^\s*([A-Za-z][A-Za-z ,'-]*?)\s+\d")


def rxnorm_ingredient(display: str) -> str | None:
    """The ingredient of an RxNorm clinical or branded drug name with one ingredient: the words
    before its strength ("clonazePAM 0.25 MG Oral Tablet" -> "clonazePAM"); None for a
    combination ("A 5 MG / B 10 MG ...") or a name that does not start with one."""
    if " / " in display:
        return None
    found = _BEFORE_STRENGTH.match(_BRAND.sub("", display))
    return found.group(1).strip() if found else None
