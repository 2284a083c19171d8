"""Resources out of what a caller sends: a Bundle, a CDS Hooks prefetch object (key -> resource,
Bundle or null) or a list; and the record of what the mapping could not read.

What is not a resource (a Bundle entry without one, an object without `resourceType`, an empty
list where a resource was expected) is yielded as `Unmapped`, with where it is: never skipped.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from ..knowledge_base import KnowledgeBase
from . import elements as el
from .elements import Unreadable

MAX_UNMAPPED = 100  # problems listed one by one; the rest are counted
MAX_DEPTH = 4  # Bundles within prefetch objects within Bundles


class Unmapped(BaseModel):
    """Something in the FHIR data that could not be read onto the scenario, and why."""

    where: str = Field(description="where it is, e.g. 'prefetch.conditions.entry[3] Condition/c1'")
    reason: str = Field(description="what could not be read, and what was done instead")


@dataclass
class Found:
    where: str
    resource: dict[str, Any]


@dataclass
class State:
    kb: KnowledgeBase
    as_of: dt.date
    unmapped: list[Unmapped] = field(default_factory=list)
    more: int = 0
    left_out: Counter[str] = field(default_factory=Counter)
    notes: list[Unmapped] = field(default_factory=list)
    uncertain: bool = False  # the medication just read could be the subject drug, unrecognised

    def problem(self, where: str, reason: str) -> None:
        if len(self.unmapped) < MAX_UNMAPPED:
            self.unmapped.append(Unmapped(where=where, reason=reason))
        else:
            self.more += 1


def resources(data: Any, where: str = "", depth: int = 0) -> Iterator[Found | Unmapped]:
    """Every resource in a Bundle, a prefetch object (key -> resource, Bundle or null) or a list,
    with where it is; what is not a resource is yielded as Unmapped."""
    if depth > MAX_DEPTH:
        yield Unmapped(where=where or "(top)", reason="nested too deeply to be read")
        return
    if isinstance(data, list):
        if not data and depth > 0:
            yield Unmapped(where=where, reason="an empty list holds no resource (no data is null)")
        for i, item in enumerate(data):
            yield from resources(item, f"{where}[{i}]", depth + 1)
        return
    if not isinstance(data, dict):
        if data is not None:
            yield Unmapped(where=where or "(top)", reason=f"{el.kind(data)}, not a resource")
        return
    rtype = data.get("resourceType")
    if rtype is None and depth > 0:
        yield Unmapped(where=where, reason="an object without resourceType: not a resource")
        return
    if rtype is None:  # a prefetch object: key -> resource, Bundle or null ("no data")
        for key, value in data.items():
            yield from resources(value, f"{where}.{key}" if where else str(key), depth + 1)
        return
    if rtype == "Bundle":
        for i, entry in enumerate(el.as_list(data.get("entry"))):
            at = f"{where}.entry[{i}]" if where else f"entry[{i}]"
            if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
                yield Unmapped(where=at, reason="a Bundle entry without a resource object")
                continue
            if not isinstance(entry["resource"].get("resourceType"), str):
                yield Unmapped(where=at, reason="a Bundle entry whose resource has no resourceType")
                continue
            yield from resources(entry["resource"], f"{at}.resource", depth + 1)
        return
    if not isinstance(rtype, str):
        yield Unmapped(where=where or "(top)", reason=f"resourceType is {el.kind(rtype)}")
        return
    yield Found(where or "(top)", data)


def name_of(found: Found) -> str:
    rid = found.resource.get("id")
    rtype = found.resource.get("resourceType")
    return f"{found.where} {rtype}/{rid}" if isinstance(rid, str) else f"{found.where} {rtype}"


def diagnostics(outcome: dict[str, Any]) -> str:
    """What an OperationOutcome says, in a line."""
    said = [
        " ".join(str(issue.get("diagnostics") or issue.get("code") or "").split())[:300]
        for issue in el.as_list(outcome.get("issue"))[:5]
        if isinstance(issue, dict)
    ]
    return "; ".join(s for s in said if s) or "no diagnostics given"


def index_medications(found: list[Found]) -> dict[str, dict[str, Any]]:
    """Medication resources by the references that can name them."""
    out: dict[str, dict[str, Any]] = {}
    for f in found:
        res = f.resource
        if res["resourceType"] == "Medication" and isinstance(res.get("id"), str):
            out[f"Medication/{res['id']}"] = res
            out[f"urn:uuid:{res['id']}"] = res
    return out


def about(resource: dict[str, Any], pid: str) -> bool:
    what = "subject" if resource.get("subject") is not None else "patient"
    ref = resource.get(what)
    if ref is not None and not isinstance(ref, dict):
        raise Unreadable(f"{what} is {el.kind(ref)}, not a Reference")
    target = el.text(ref.get("reference"), f"{what}.reference") if ref else None
    if target is None:
        return True  # not said: taken as the request's patient
    target = target.split("/_history/", 1)[0]  # a versioned reference names the same patient
    return target.startswith("urn:") or target.rsplit("/", 1)[-1] == pid
