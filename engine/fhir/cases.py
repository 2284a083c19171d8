"""FHIR patient Bundles as cases: `caveat batch` on a directory of Bundles (one patient per
file, as Synthea writes them) and `caveat evaluate --fhir BUNDLE.json`.

`enable(as_of)` registers a case reader with the core's batch (engine.cases.register_reader): a
case whose data is a FHIR Bundle is mapped onto a scenario (engine.fhir.mapping), and what could
not be read travels with its outcome as notes (the `notes` of its JSON Lines record).
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Any

from ..cases import register_reader
from ..knowledge_base import KnowledgeBase
from .mapping import FhirMapping, map_patient


def is_bundle(data: Any) -> bool:
    return isinstance(data, dict) and data.get("resourceType") == "Bundle"


def notes_of(mapping: FhirMapping) -> list[str]:
    """What could not be read, and what was left out on purpose (counted), as lines."""
    notes = [f"{u.where}: {u.reason}" for u in (*mapping.notes, *mapping.unmapped)]
    if mapping.unmapped_more:
        notes.append(f"and {mapping.unmapped_more:,} more that could not be read")
    notes += [f"left out: {reason} ({count:,})" for reason, count in mapping.left_out.items()]
    return notes


def bundle_case(
    kb: KnowledgeBase, data: Any, name: str, *, as_of: dt.date
) -> tuple[dict[str, Any], list[str]] | None:
    """A Bundle's patient as a case (its scenario), with notes; None for anything else."""
    if not is_bundle(data):
        return None
    mapping = map_patient(data, kb, as_of=as_of)
    return mapping.scenario, notes_of(mapping)


def enable(as_of: dt.date | None = None) -> None:
    """Read FHIR Bundles as cases from now on, ages and durations computed as of `as_of`
    (default: today)."""
    register_reader(partial(bundle_case, as_of=as_of or dt.date.today()))
