"""One partition of a population evaluated: `evaluate_partition`, the pure function every runner
calls (the embedded one-machine runner, Dask, or any engine that can hand it whole patients).

A partition is any collection of FHIR resources in which each patient's resources are all
present (grouped by a hash of the patient id, as both runners here do). The function groups them
by patient, maps each patient with the FHIR mapping the CDS Hooks service uses
(engine.fhir.mapping.map_patient: the same rules about what is active and what is unmapped),
evaluates the patients on the pack's subject drug (every patient with `everyone`), and gives one
`PatientRow` each, in order of patient id. It reads no file, keeps no state between calls and
depends only on its arguments, so a partition retried on another worker gives the same rows.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import BaseModel, Field

from ..caveats import indicator
from ..errors import ScenarioError
from ..fhir.mapping import map_patient
from ..knowledge_base import KnowledgeBase, load_knowledge_base
from ..pipeline import run
from .pushdown import medication_index, patient_of


class RowStatement(BaseModel):
    """A statement that applies to the patient, with its caveats."""

    rule: str = Field(description="the rule's id")
    category: str = Field(description="its category, e.g. indication")
    text: str = Field(description="the statement")
    caveats: list[str] = Field(description="its caveat codes, e.g. ['long-term-unstudied']")
    indicator: str = Field(description="'warning' when a caveat limits it, else 'info' (as cards)")


class RowUndetermined(BaseModel):
    """A rule that may apply to the patient, and what would decide it."""

    rule: str = Field(description="the rule's id")
    text: str = Field(description="the statement it would make")
    caveats: list[str] = Field(description="its caveat codes")
    needs: list[str] = Field(description="what would decide it (facts not given, items unread)")


class PatientRow(BaseModel):
    """One patient of a population: what applies, what could not be decided, and what of the
    record could not be read."""

    patient: str = Field(description="the Patient's id in the export")
    as_of: dt.date = Field(description="the date ages and durations were computed on")
    on_subject_drug: bool = Field(
        description="whether an active order or statement is for the pack's subject drug (or "
        "for a drug the pack cannot tell from it)"
    )
    subject_orders: list[str] = Field(
        description="the orders and statements for the subject drug, e.g. 'MedicationRequest/m1'"
    )
    warning: bool = Field(description="whether any statement that applies is 'warning'-level")
    statements: list[RowStatement] = Field(description="the statements that apply")
    undetermined: list[RowUndetermined] = Field(description="the rules that may apply")
    unrecognised: list[str] = Field(
        description="conditions and medications the pack did not recognise that were evaluated "
        "(e.g. 'conditions: SNOMED-CT 35489007'); those that could change no result are counted "
        "in the population summary instead"
    )
    also_unrecognised: list[str] = Field(
        default_factory=list,
        description="items the pack did not recognise on lists no rule tests for absence: they "
        "could change no statement, so the reading of the export counted them and did not keep "
        "their resources (engine.population.pushdown)",
    )
    not_covered: list[str] = Field(description="recognised items no rule of the pack speaks to")
    unmapped: list[str] = Field(description="what of the record could not be read, and where")
    notes: list[str] = Field(description="how the record was read where it did not say directly")
    error: str | None = Field(None, description="why the patient could not be evaluated, if so")
    scenario: dict[str, Any] = Field(description="the scenario the record was read as")


def evaluate_partition(
    resources: Iterable[dict[str, Any]],
    kb: KnowledgeBase | None = None,
    *,
    as_of: dt.date,
    everyone: bool = False,
) -> list[PatientRow]:
    """Rows for the patients of a partition: FHIR resources (dicts) in any order, each patient's
    all present. Medication resources among them resolve the orders' `medicationReference`.
    Patients with no active order or statement for the pack's subject drug get no row unless
    `everyone`. Resources that name no patient (other than Medication) are nobody's: the caller
    reports them (both runners here do, with their file and line). `kb` defaults to the bundled
    pack, loaded once per process."""
    pack = kb if kb is not None else load_knowledge_base()
    groups, medications = group_by_patient(resources)
    return [row for _, row in patient_rows(groups, pack, medications, as_of, everyone) if row]


def group_by_patient(
    resources: Iterable[dict[str, Any]],
) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    """Resources by patient id, and the Medication resources (which belong to no patient)."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    medications: list[dict[str, Any]] = []
    for resource in resources:
        if resource.get("resourceType") == "Medication":
            medications.append(resource)
            continue
        pid = patient_of(resource)
        if pid is not None:
            groups[pid].append(resource)
    return groups, medications


def patient_rows(
    groups: dict[str, list[dict[str, Any]]],
    kb: KnowledgeBase,
    medications: list[dict[str, Any]],
    as_of: dt.date,
    everyone: bool,
    markers: dict[str, list[str]] | None = None,
) -> Iterator[tuple[str, PatientRow | None]]:
    """(patient id, row) in order of patient id; the row is None for a patient not evaluated.
    `markers`: per patient, the items not recognised whose resources the reading did not keep."""
    index = medication_index(medications) if medications else {}
    for pid in sorted(groups):
        data = groups[pid]
        if index:
            data = data + referred(data, index)
        row = patient_row(pid, data, kb, as_of, everyone)
        if row is not None and markers and pid in markers:
            row.also_unrecognised = _once(markers[pid])
        yield pid, row


def _once(items: list[str]) -> list[str]:
    """Items each once whatever their case, under the least spelling (as the scenario's reading
    reports an item given twice), sorted."""
    least: dict[str, str] = {}
    for item in items:
        key = item.casefold()
        if key not in least or item < least[key]:
            least[key] = item
    return sorted(least.values(), key=str.casefold)


def referred(
    resources: list[dict[str, Any]], index: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """The Medication resources some of these resources refer to (each once)."""
    out: dict[int, dict[str, Any]] = {}
    for resource in resources:
        ref = resource.get("medicationReference")
        target = ref.get("reference") if isinstance(ref, dict) else None
        found = index.get(target) if isinstance(target, str) else None
        if found is not None:
            out[id(found)] = found
    return list(out.values())


def _named(where: str) -> str:
    """Where the mapping found something, without its place in the list it was handed (which
    says nothing about the export): "[3] Condition/c1" is "Condition/c1"."""
    return _PLACE.sub("", where)


_PLACE = re.compile(r"^\[\d+\] ?")


def patient_row(
    pid: str, resources: list[dict[str, Any]], kb: KnowledgeBase, as_of: dt.date, everyone: bool
) -> PatientRow | None:
    """One patient's row, or None when they are not on the subject drug (and not `everyone`)."""
    mapping = map_patient(resources, kb, as_of=as_of, patient_id=pid)
    on_subject = bool(mapping.subject_orders or mapping.unrecognised_orders)
    if not (on_subject or everyone):
        return None
    unmapped = [f"{_named(u.where)}: {u.reason}" for u in mapping.unmapped]
    if mapping.unmapped_more:
        unmapped.append(f"and {mapping.unmapped_more:,} more that could not be read")
    if not any(r.get("resourceType") == "Patient" for r in resources):
        unmapped.append("Patient: no Patient resource in the export; the age is unknown")
    fields: dict[str, Any] = {
        "patient": pid,
        "as_of": mapping.as_of,
        "on_subject_drug": on_subject,
        "subject_orders": mapping.subject_orders + mapping.unrecognised_orders,
        "unmapped": unmapped,
        "notes": [f"{_named(u.where)}: {u.reason}" for u in mapping.notes],
        "scenario": mapping.scenario,
    }
    try:
        result = run(kb, mapping.scenario)
    except ScenarioError as exc:
        return PatientRow(
            warning=False,
            statements=[],
            undetermined=[],
            unrecognised=[],
            not_covered=[],
            error=str(exc),
            **fields,
        )
    statements = [
        RowStatement(
            rule=s.rule,
            category=s.category,
            text=s.text,
            caveats=[c.code for c in s.caveats],
            indicator=indicator([c.code for c in s.caveats]),
        )
        for s in result.statements
    ]
    return PatientRow(
        warning=any(s.indicator == "warning" for s in statements),
        statements=statements,
        undetermined=[
            RowUndetermined(
                rule=u.rule, text=u.text, caveats=[c.code for c in u.caveats], needs=u.needs
            )
            for u in result.undetermined
        ],
        unrecognised=[f"{u.field}: {u.input}" for u in result.unrecognized],
        not_covered=[f"{n.field}: {n.input} ({n.label})" for n in result.not_covered],
        **fields,
    )
