"""A patient's FHIR R4 resources onto a scenario, with what could not be mapped and why.

`map_patient` takes a Bundle, a CDS Hooks prefetch object, or a list of resources, and reads:

- `Patient.birthDate` as `patient.age` in completed years on the `as_of` date (results are
  reproducible). A partial date ("2008", "2008-05") gives the lower age when both possible ages
  agree on every age test of the pack's rules; otherwise the age stays unknown, and says why.
- Conditions whose `clinicalStatus` is active, recurrence or relapse (or not given) and whose
  `verificationStatus` is not refuted or entered-in-error, by ICD-10-CM or SNOMED CT coding, else
  by their words (`code.text`, or a coding's display) as a label.
- MedicationRequests (active, on-hold, draft) and MedicationStatements (active, intended), by
  RxNorm or ATC coding (product codes resolve through the pack's code lists), else by words. A
  medication that is the pack's subject drug gives `therapy`; the others are `medications`.
- For the orders and statements of the subject drug (engine.fhir.therapy): `therapy.intent`
  from the first that gives one (the selected order, else a draft, else the most recent), by
  `courseOfTherapyType`; `therapy.duration_years` the longest any of them gives (a new order for
  a month is not the whole of a use that began years ago). The dose stays unknown and says so:
  no pack defines dose bands a quantity could be read in.
- An RxNorm coding the pack does not know by code is read by its drug name where the display is
  an RxNorm clinical-drug name with one ingredient ("clonazePAM 0.25 MG Oral Tablet" is read as
  clonazepam), and the mapping notes it.
- A deceased patient's record is read as of the day they died (when it is given), not later: an
  order still "active" in the record ended then.
- An OperationOutcome among the data (a client saying a query failed, a search's warning) is
  reported with its diagnostics; a prefetch value that is an empty object or list is reported
  (no data is `null`).

What cannot be read is listed in `unmapped` with where it is; what is left out on purpose
(a resolved condition, a stopped order, a resource type the mapping does not read) is counted in
`left_out`. An item the pack does not recognise is kept (as its code, else its words): what was not
recognised is never taken as absent. When a list would pass the scenario's limit of items, the
recognised ones are kept first and the rest are counted. Input text echoed in the mapping (ids,
codes, statuses) is kept as given, but for lone surrogates, written as escapes (`\\ud800`) so
that the mapping can be written as UTF-8.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from functools import lru_cache
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, Field

from ..cleantext import no_surrogates
from ..knowledge_base import KnowledgeBase
from ..scenario import MAX_ITEMS
from ..vocabulary import normalise_text
from . import elements as el
from .elements import Unreadable
from .patient import age_of, deceased
from .resources import (
    Found,
    State,
    Unmapped,
    about,
    diagnostics,
    index_medications,
    name_of,
    resources,
)
from .therapy import therapy_of

ACTIVE_CONDITION = frozenset({"active", "recurrence", "relapse"})
EXCLUDED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
ACTIVE_REQUEST = frozenset({"active", "on-hold", "draft"})
ACTIVE_STATEMENT = frozenset({"active", "intended"})
READ = ("Patient", "Condition", "MedicationRequest", "MedicationStatement", "Medication")


class FhirMapping(BaseModel):
    """A patient's FHIR resources read as a scenario, with what could not be read."""

    scenario: dict[str, Any] = Field(description="the scenario, ready for evaluate()")
    patient: str | None = Field(description="the Patient's id, when the data held one")
    as_of: dt.date = Field(description="the date ages and durations were computed on")
    subject_orders: list[str] = Field(
        description="the orders and statements for the pack's subject drug, e.g. "
        "'MedicationRequest/m1'; the first gave `therapy`"
    )
    unmapped: list[Unmapped] = Field(description="what could not be read (the first 100)")
    unmapped_more: int = Field(0, description="how many more could not be read")
    left_out: dict[str, int] = Field(
        description="resources left out on purpose, counted by reason (e.g. "
        "'Condition: clinicalStatus resolved')"
    )
    unrecognised_conditions: int = Field(
        0, description="conditions kept that the pack does not recognise (unrelated, mostly)"
    )
    unrecognised_orders: list[str] = Field(
        default_factory=list,
        description="orders and statements whose drug the pack does not recognise and could be "
        "its subject drug (given only in words or only by code, or in words naming it), e.g. "
        "'MedicationRequest/m1'",
    )
    notes: list[Unmapped] = Field(
        default_factory=list,
        description="how the data was read where it did not say it directly (a drug read by its "
        "RxNorm name, a deceased patient's record read as of the day they died)",
    )


def map_patient(
    data: Any,
    kb: KnowledgeBase,
    *,
    as_of: dt.date,
    patient_id: str | None = None,
    selections: tuple[str, ...] = (),
    draft_orders: Any = None,
) -> FhirMapping:
    """Map a patient's resources (and, for order hooks, the draft orders) onto a scenario."""
    state = State(kb, as_of)
    found: list[Found] = []
    for item in (*resources(data), *resources(draft_orders, "context.draftOrders")):
        if isinstance(item, Unmapped):
            state.problem(item.where, item.reason)
        else:
            found.append(item)
    by_ref = index_medications(found)
    patients = [f for f in found if f.resource["resourceType"] == "Patient"]
    if patient_id is not None:
        for other in [p for p in patients if p.resource.get("id") not in (None, patient_id)]:
            state.problem(name_of(other), "about another patient: not used")
        patients = [p for p in patients if p.resource.get("id") in (None, patient_id)]
    scenario: dict[str, Any] = {}
    pid = patient_id
    if patients:
        chosen = patients[0]
        pid = pid or _str(chosen.resource.get("id"))
        for other in patients[1:]:
            state.problem(name_of(other), "a second Patient: only the first is read")
        deceased(state, chosen)
        age = age_of(state, chosen)
        if age is not None:
            scenario["patient"] = {"age": age}
    conditions: list[tuple[bool, Any]] = []
    meds: list[tuple[bool, Any]] = []
    subject: list[tuple[tuple[int, int], str, Found]] = []
    unknown: list[str] = []  # orders and statements whose drug was not recognised
    for f in found:
        rtype = f.resource["resourceType"]
        if rtype in ("Patient", "Medication"):
            continue
        if rtype == "OperationOutcome":
            state.problem(name_of(f), f"an OperationOutcome: {diagnostics(f.resource)}")
            continue
        if rtype not in READ:
            state.left_out[f"{rtype}: not read by the mapping"] += 1
            continue
        try:
            if pid is not None and not about(f.resource, pid):
                state.problem(name_of(f), "about another patient: not used")
                continue
            if rtype == "Condition":
                item = _condition(state, f)
                if item is not None:
                    conditions.append(item)
            else:
                med = _medication(state, f, by_ref)
                if med is None:
                    continue
                if med[2]:  # the subject drug
                    rank = _rank(f, selections)
                    subject.append((rank, f"{rtype}/{f.resource.get('id')}", f))
                else:
                    meds.append(med[:2])
                    if state.uncertain and isinstance(f.resource.get("id"), str):
                        unknown.append(f"{rtype}/{f.resource['id']}")
                    state.uncertain = False
        except Unreadable as exc:
            state.problem(name_of(f), f"{exc}; the resource is not used")
    kept = _bounded(state, conditions, "conditions")
    scenario["conditions"] = [value for _, value in kept]
    scenario["medications"] = [value for _, value in _bounded(state, meds, "medications")]
    unrecognised = sum(1 for known, _ in kept if not known)
    subject.sort(key=lambda s: s[0])
    if subject:
        therapy = _therapy(state, [f for _, _, f in subject])
        if therapy:
            scenario["therapy"] = therapy
    if pid:
        if el.UNPRINTABLE.search(pid[:200]):
            state.problem(
                "Patient",
                "the patient's id holds a control character or a lone surrogate: no scenario id",
            )
        else:
            scenario["id"] = pid[:200]
    ok = no_surrogates  # input echoed in the mapping is written as UTF-8 (JSON, reports)
    left_out: Counter[str] = Counter()
    for reason, count in state.left_out.items():
        left_out[ok(reason)] += count
    return FhirMapping(
        scenario=scenario,
        patient=None if pid is None else ok(pid),
        as_of=state.as_of,
        subject_orders=[ok(s[1]) for s in subject],
        unmapped=[Unmapped(where=ok(u.where), reason=ok(u.reason)) for u in state.unmapped],
        unmapped_more=state.more,
        left_out=dict(left_out),
        unrecognised_conditions=unrecognised,
        notes=[Unmapped(where=ok(u.where), reason=ok(u.reason)) for u in state.notes],
        unrecognised_orders=[ok(u) for u in unknown],
    )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _rank(f: Found, selections: tuple[str, ...]) -> tuple[int, int]:
    """Selected orders first, then drafts, then active ones; the most recent first within
    (by `authoredOn`, else the start of `effectivePeriod`, `effectiveDateTime`, `dateAsserted`;
    undated or unreadable dates last)."""
    res = f.resource
    ref = f"{res['resourceType']}/{res.get('id')}"
    rank = 0 if ref in selections else 1 if res.get("status") == "draft" else 2
    period = res.get("effectivePeriod")
    when = (
        res.get("authoredOn")
        or (period.get("start") if isinstance(period, dict) else None)
        or res.get("effectiveDateTime")
        or res.get("dateAsserted")
    )
    try:
        span = el.date(when, "date")
    except Unreadable:
        span = None
    return rank, -span[0].toordinal() if span else 1


def _therapy(state: State, orders: list[Found]) -> dict[str, Any]:
    """The therapy of the subject drug: the first order's (selected, draft, most recent), its
    intent else the next order's that says one, and the longest duration any order or statement
    gives (a new order for a month is not the whole of a use that began years ago)."""
    focus = orders[0]
    therapy = therapy_of(
        focus.resource, state.as_of, lambda why: state.problem(name_of(focus), why)
    )
    for other in orders[1:]:
        more = therapy_of(other.resource, state.as_of, lambda why: None)
        if "intent" not in therapy and "intent" in more:
            therapy["intent"] = more["intent"]
            state.notes.append(Unmapped(where=name_of(other), reason="gave the therapy's intent"))
        years = more.get("duration_years")
        if years is not None and years > therapy.get("duration_years", -1):
            therapy["duration_years"] = years
            state.notes.append(
                Unmapped(
                    where=name_of(other),
                    reason=f"gave the therapy's duration ({years:g} years), the longest of the "
                    "orders and statements for the subject drug",
                )
            )
    return therapy


def _condition(state: State, found: Found) -> tuple[bool, Any] | None:
    res = found.resource
    verification = el.status(res.get("verificationStatus"), "verificationStatus")
    if verification in EXCLUDED_VERIFICATION:
        state.left_out[f"Condition: verificationStatus {verification}"] += 1
        return None
    clinical = el.status(res.get("clinicalStatus"), "clinicalStatus")
    if clinical is not None and clinical not in ACTIVE_CONDITION:
        state.left_out[f"Condition: clinicalStatus {clinical[:40]}"] += 1
        return None
    item = _item(state, res.get("code"), "code", ("ICD-10-CM", "SNOMED-CT"), name_of(found))
    if item is None:
        state.problem(name_of(found), "no code and no text: nothing to recognise it by")
    return item


def _medication(
    state: State, found: Found, by_ref: dict[str, dict[str, Any]]
) -> tuple[bool, Any, bool] | None:
    res = found.resource
    rtype = res["resourceType"]
    wanted = ACTIVE_REQUEST if rtype == "MedicationRequest" else ACTIVE_STATEMENT
    current = el.text(res.get("status"), "status")
    if current not in wanted:
        state.left_out[f"{rtype}: status {str(current)[:40]}"] += 1
        return None
    concept = res.get("medicationCodeableConcept")
    if concept is None and res.get("medicationReference") is not None:
        ref = res["medicationReference"]
        target = ref.get("reference") if isinstance(ref, dict) else None
        medication = by_ref.get(target) if isinstance(target, str) else None
        if medication is None:
            for contained in el.as_list(res.get("contained")):
                if isinstance(contained, dict) and f"#{contained.get('id')}" == target:
                    medication = contained
        if medication is None:
            shown = ref.get("display") if isinstance(ref, dict) else None
            concept = {"text": shown} if isinstance(shown, str) and shown else None
            if concept is None:
                state.problem(name_of(found), f"medicationReference {str(target)[:80]!r} not found")
                return None
        else:
            concept = medication.get("code")
    item = _item(state, concept, "medication", ("RxNorm", "ATC"), name_of(found))
    if item is None:
        state.problem(name_of(found), "no medication code and no text: nothing to recognise it by")
        return None
    known, value = item
    if not known and _could_be_subject(state.kb, concept):
        state.uncertain = True
    return known, value, known and _is_subject(state.kb, value)


def _could_be_subject(kb: KnowledgeBase, concept: Any) -> bool:
    """Whether a drug the pack does not recognise could still be its subject drug: it is known
    to be another only when it has an RxNorm or ATC code and words, none of them a name of the
    subject ("sertraline 50 MG Oral Tablet", RxNorm 312940); a drug given only in words, or
    only by a code, or whose words name the subject ("clonazepam 0.5mg tabs"), could be."""
    subject = kb.manifest.subject
    if not subject or not isinstance(concept, dict):
        return bool(subject)
    try:
        found = list(el.codings(concept, "medication"))
        words = " ".join([concept.get("text") or "", *(d for _, _, d in found)])
    except (Unreadable, TypeError):
        return True
    coded = any(system in ("RxNorm", "ATC") for system, _, _ in found)
    if not coded or not words.strip():
        return True
    said = f" {normalise_text(words)} "
    return any(name in said for name in _subject_names(kb))


@lru_cache(maxsize=16)
def _subject_names(kb: KnowledgeBase) -> tuple[str, ...]:
    """The subject's label and synonyms, normalised and padded for a whole-word search."""
    subject = kb.manifest.subject
    if not subject:
        return ()
    names = [kb.vocabulary.label(subject), *kb.vocabulary.concepts[subject].synonyms]
    return tuple(f" {normalise_text(n)} " for n in names)


def _is_subject(kb: KnowledgeBase, item: Any) -> bool:
    subject = kb.manifest.subject
    if not subject:
        return False
    vocab = kb.vocabulary
    if isinstance(item, dict):
        found = [r.concept for r in vocab.lookup_code(item["system"], item["code"])]
    else:
        hit = vocab.lookup_text(item)
        found = [hit.concept] if hit else []
    return any(subject in vocab.closure(c) for c in found)


def _item(
    state: State, concept: Any, what: str, systems: tuple[str, ...], name: str
) -> tuple[bool, Any] | None:
    """(recognised, scenario item) for a CodeableConcept: its first coding the pack recognises,
    else its words if the pack recognises them, else its first coding in a system the scenario
    knows, else its words; None when it holds neither."""
    vocab = state.kb.vocabulary
    first: dict[str, str] | None = None
    drug: tuple[str, str, str] | None = None  # (ingredient, code, display) of an RxNorm name
    for system, code, display in el.codings(concept, what):
        if system not in systems or len(code) > 40:
            continue
        item = {"code": code, "system": system}
        if vocab.lookup_code(system, code):
            return True, item
        first = first or item
        ingredient = el.rxnorm_ingredient(display) if system == "RxNorm" else None
        if drug is None and ingredient and vocab.lookup_text(ingredient):
            drug = (ingredient, code, display)
    if drug is not None:
        ingredient, code, display = drug
        state.notes.append(
            Unmapped(
                where=name,
                reason=f"RxNorm {code} {display[:120]!r} is in no code list of the pack: read by "
                f"its ingredient's name, {ingredient!r}",
            )
        )
        return True, " ".join(el.UNPRINTABLE.sub(" ", ingredient).split())
    words = el.label(concept, what)
    if words is not None:  # control characters and lone surrogates read as spaces
        words = " ".join(el.UNPRINTABLE.sub(" ", words).split())[:200].strip() or None
    if words and (vocab.lookup_text(words) or vocab.ambiguity(words)):
        return bool(vocab.lookup_text(words)), words
    if first is not None:
        return False, first
    return (False, words) if words else None


def _bounded(
    state: State, items: list[tuple[bool, Any]], field_name: str
) -> list[tuple[bool, Any]]:
    """The items, each once, recognised ones first, at most the scenario's limit."""
    seen: set[str] = set()
    kept: list[tuple[bool, Any]] = []
    for known, value in items:
        key = repr(value)
        if key not in seen:
            seen.add(key)
            kept.append((known, value))
    kept.sort(key=lambda k: not k[0])
    if len(kept) > MAX_ITEMS:
        dropped = kept[MAX_ITEMS:]
        state.left_out[f"{field_name}: beyond the first {MAX_ITEMS}"] += len(dropped)
        kept = kept[:MAX_ITEMS]
    return kept


class Reading(NamedTuple):
    """What the mapping makes of one Condition, MedicationRequest or MedicationStatement on its
    own: an item (`entry`, the scenario's condition or medication), something left out on purpose
    or a problem (`why`), as `map_patient` would read it."""

    outcome: Literal["item", "left out", "problem"]
    why: str = ""
    entry: Any = None
    known: bool = False  # the pack recognises the entry
    subject: bool = False  # the subject drug, or a drug the pack cannot tell from it


def read_resource(
    resource: dict[str, Any], kb: KnowledgeBase, medications: dict[str, dict[str, Any]]
) -> Reading:
    """One Condition, MedicationRequest or MedicationStatement read as `map_patient` reads it
    (`medications`: Medication resources by reference, see resources.index_medications). The
    date plays no part in reading an item, only in ages and durations."""
    state = State(kb, dt.date.today())
    found = Found("", resource)
    try:
        if resource.get("resourceType") == "Condition":
            got = _condition(state, found)
            subject = False
        else:
            med = _medication(state, found, medications)
            got = None if med is None else med[:2]
            subject = med is not None and (med[2] or state.uncertain)
    except Unreadable as exc:
        return Reading("problem", str(exc))
    if got is None:
        if state.left_out:
            return Reading("left out", next(iter(state.left_out)))
        return Reading("problem", state.unmapped[0].reason if state.unmapped else "not read")
    return Reading("item", entry=got[1], known=got[0], subject=subject)
