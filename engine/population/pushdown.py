"""The pack's vocabulary pushed down to the reading of an export: which resources are kept for
the join by patient, and which are only counted.

A resource is kept when it could change a patient's row, and only counted otherwise:

- Patient resources are kept (ages).
- Conditions, MedicationRequests and MedicationStatements are read one by one as the FHIR
  mapping reads them (engine.fhir.mapping.read_resource). One the mapping would leave out on
  purpose (a resolved condition, a stopped order) is counted by the mapping's reason. One the
  mapping cannot read is kept, so that the patient's row says what could not be read.
- An item the pack recognises is kept; so is every order or statement for the subject drug or a
  drug the pack cannot tell from it.
- An item the pack does not recognise is kept when its list is one the pack's rules test for
  absence ("no condition is ..."): there it makes such a test unknown, and the rule undetermined,
  which is what the row must say (what was not recognised is never taken as absent). On a list no
  rule tests for absence it cannot change a statement, an undetermined rule or what one needs: it
  is counted by its code (the codes the pack should learn next) and not kept.
- An order whose `medicationReference` names a Medication not read yet is kept (it is read
  with the patient's record, where the Medication may be found).
- Every other resource type is counted by type and not kept (the mapping does not read it).
  Medication resources are kept aside for the orders that refer to them.

`tests/test_population.py` holds this to its promise: on generated patients, the rows made from
what is kept equal the rows made from every resource. Where they can differ is in lists only, past
the scenario's limit of items (MAX_ITEMS, 100 a list): the whole record is cut to the limit, the
kept one has fewer items to cut, so its row can list more of what was not recognised.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

from ..facts import Unknown, _read
from ..fhir import elements as el
from ..fhir.mapping import read_resource
from ..fhir.resources import Found, index_medications
from ..knowledge_base import KnowledgeBase
from ..scenario import Code

ITEM_TYPES = frozenset({"Condition", "MedicationRequest", "MedicationStatement"})


class Decision(NamedTuple):
    """What becomes of one resource: kept for its patient, or counted under `why`."""

    keep: bool
    why: str = ""  # counted: the resource type, the mapping's reason, or "unrecognised"
    item: str = ""  # an item not recognised, as rows list it: "medications: RxNorm 310798"
    words: str = ""  # its words in the data: "Hydrochlorothiazide 25 MG Oral Tablet"


KEEP = Decision(True)


@lru_cache(maxsize=16)
def absence_lists(kb: KnowledgeBase) -> frozenset[str]:
    """The lists ("conditions", "medications") some rule of the pack tests for absence: where
    an item not recognised makes a test unknown."""
    return frozenset(listed for _, listed in kb.program.maybe_props.values())


def patient_of(resource: dict[str, Any]) -> str | None:
    """The id of the patient a resource is about: a Patient's own id, else the last segment of
    its `subject` (or `patient`) reference ("Patient/123", "urn:uuid:123"); None if it names
    none."""
    if resource.get("resourceType") == "Patient":
        rid = resource.get("id")
        return rid if isinstance(rid, str) and rid else None
    for name in ("subject", "patient"):
        ref = resource.get(name)
        if isinstance(ref, dict):
            target = ref.get("reference")
            if isinstance(target, str) and target:
                target = target.split("/_history/", 1)[0]
                if target.startswith("urn:uuid:"):
                    return target[9:] or None
                kind, _, rid = target.rpartition("/")
                if kind.rsplit("/", 1)[-1] in ("Patient", "") and rid:
                    return rid
                return None
    return None


def decide(
    resource: dict[str, Any], kb: KnowledgeBase, medications: dict[str, dict[str, Any]]
) -> Decision:
    """Whether to keep a resource for its patient's row (see the module's docstring)."""
    rtype = resource["resourceType"]
    if rtype == "Patient":
        return KEEP
    if rtype not in ITEM_TYPES:
        return Decision(False, rtype)
    ref = resource.get("medicationReference")
    if ref is not None:
        target = ref.get("reference") if isinstance(ref, dict) else None
        if not isinstance(target, str) or target not in medications:
            return KEEP  # (read with the patient's record: found there, or said to be unreadable)
    reading = read_resource(resource, kb, medications)
    if reading.outcome == "left out":
        return Decision(False, reading.why)
    if reading.outcome == "problem" or reading.known or reading.subject:
        return KEEP
    field = "conditions" if rtype == "Condition" else "medications"
    entry = reading.entry
    read = _read(
        kb.vocabulary,
        field,  # type: ignore[arg-type]
        Code(code=entry["code"], system=entry["system"]) if isinstance(entry, dict) else entry,
        True,
    )
    if not isinstance(read, Unknown):
        return KEEP
    lists = absence_lists(kb)
    keep = field in lists or (read.home or "") in lists
    return Decision(
        keep, "" if keep else "unrecognised", f"{field}: {read.input}", _words(resource, entry)
    )


def _words(resource: dict[str, Any], entry: Any) -> str:
    """The data's words for an item given by its code (its coding's display, else the text)."""
    if not isinstance(entry, dict):
        return ""
    concept = resource.get("code") or resource.get("medicationCodeableConcept") or {}
    try:
        for system, code, display in el.codings(concept, "code"):
            if system == entry["system"] and code == entry["code"] and display:
                return " ".join(display.split())[:120]
        return " ".join((el.label(concept, "code") or "").split())[:120]
    except el.Unreadable:
        return ""


def medication_index(resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Medication resources by the references that can name them."""
    return index_medications([Found("", r) for r in resources])
