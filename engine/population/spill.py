"""Reading an export into partitions on disk: each resource the push-down keeps is appended to
the spill file of its patient's partition (a stable hash of the patient id), so that every
patient's resources end up in one file whatever the export's order, and no more than one
partition is ever held in memory.

What a spill file holds, a line each: a kept resource, as the export wrote it; or a marker
`["u", patient, item]` for an item the patient has that the pack did not recognise and that was
not kept (engine.population.pushdown), so that the patient's row can still list it. Medication
resources (which belong to no patient) go to `medications.ndjson` beside the partitions.

Writes are buffered in memory up to a bound and appended to the files in turns, so the number of
partitions is not limited by how many files a process may hold open.
"""

from __future__ import annotations

import os
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, Field

from ..knowledge_base import KnowledgeBase
from .export import Export, ExportError, parse_line, read_lines
from .pushdown import decide, medication_index, patient_of

BUFFERED = 16 * 1024 * 1024  # bytes of spilled lines held before they are written out
PARTITION_BYTES = 32 * 1024 * 1024  # export bytes (uncompressed) per partition, roughly
GZIP_RATIO = 8  # what a gzip-compressed NDJSON file is taken to expand to, for the estimate
MAX_PARTITIONS = 4096
MEDICATIONS = "medications.ndjson"
MAX_PROBLEMS = 1000  # unreadable lines listed one by one; the rest are counted
MAX_WORDS = 20_000  # distinct unrecognised codes whose words are kept for the report


class Unreadable(BaseModel):
    """A line of the export that could not be read, with where it is."""

    file: str = Field(description="the file's name in the export")
    line: int = Field(description="the line's number, from 1 (0: the file as a whole)")
    reason: str = Field(description="why it could not be read")


class Reading(BaseModel):
    """What reading an export found: counts, and every line that could not be read."""

    files: int = Field(0, description="NDJSON files read")
    resources_read: int = Field(0, description="lines that held a resource")
    resources_kept: int = Field(0, description="resources kept for the patients' rows")
    patients_seen: int = Field(0, description="Patient resources read")
    dropped: dict[str, int] = Field(
        default_factory=dict,
        description="resources counted and not kept, by reason: a resource type the mapping does "
        "not read, the mapping's reason for leaving one out, or 'unrecognised'",
    )
    unreadable: list[Unreadable] = Field(
        default_factory=list, description=f"lines that could not be read (the first {MAX_PROBLEMS})"
    )
    unreadable_more: int = Field(0, description="how many more could not be read")
    words: dict[str, str] = Field(
        default_factory=dict,
        description="the data's words for the codes not recognised (e.g. 'medications: 310798 "
        "(RxNorm)' -> 'Hydrochlorothiazide 25 MG Oral Tablet')",
    )

    def problem(self, file: str, line: int, reason: str) -> None:
        if len(self.unreadable) < MAX_PROBLEMS:
            self.unreadable.append(Unreadable(file=file, line=line, reason=reason))
        else:
            self.unreadable_more += 1


def partitions_for(export: Export) -> int:
    """How many partitions an export is split into: about PARTITION_BYTES of NDJSON each."""
    estimate = sum(f.size * (GZIP_RATIO if f.compressed else 1) for f in export.files)
    return max(1, min(MAX_PARTITIONS, -(-estimate // PARTITION_BYTES)))


def bucket(pid: str, partitions: int) -> int:
    """A patient's partition: the same in every process and on every run."""
    return zlib.crc32(pid.encode("utf-8", "surrogatepass")) % partitions


def partition_path(directory: Path, index: int) -> Path:
    return directory / f"part-{index:05d}.ndjson"


class Spill:
    """Append-only partition files, written in turns from a bounded buffer."""

    def __init__(self, directory: Path, partitions: int) -> None:
        self.directory = directory
        self.partitions = partitions
        self.buffers: list[list[bytes]] = [[] for _ in range(partitions)]
        self.held = 0
        self.lines = [0] * partitions

    def add(self, index: int, line: bytes) -> None:
        self.buffers[index].append(line)
        self.lines[index] += 1
        self.held += len(line)
        if self.held >= BUFFERED:
            self.flush()

    def flush(self) -> None:
        for index, lines in enumerate(self.buffers):
            if lines:
                with open(partition_path(self.directory, index), "ab") as out:
                    out.write(b"".join(lines))
                lines.clear()
        self.held = 0


def spill_export(
    export: Export,
    kb: KnowledgeBase,
    directory: Path,
    partitions: int,
    progress: Callable[[int], None] | None = None,
) -> Reading:
    """Read every file of an export, keep what the push-down keeps, and write it to partition
    files in `directory` (which must exist). `progress` is told the bytes read on disk so far."""
    reading = Reading()
    spill = Spill(directory, partitions)
    medications: list[dict[str, Any]] = []
    index: dict[str, dict[str, Any]] = {}
    done = 0
    dropped: Counter[str] = Counter()
    for file in export.files:
        reading.files += 1
        name = file.path.name
        try:
            for number, raw in read_lines(file.path):
                resource = parse_line(raw)
                if isinstance(resource, str):
                    reading.problem(name, number, resource)
                    continue
                reading.resources_read += 1
                rtype = resource["resourceType"]
                if rtype == "Medication":
                    medications.append(resource)
                    index = {}
                    reading.resources_kept += 1
                    continue
                if not index and medications:
                    index = medication_index(medications)
                pid = patient_of(resource)
                if rtype == "Patient":
                    reading.patients_seen += 1
                if pid is None:
                    if rtype == "Patient" or _patient_compartment(resource):
                        reading.problem(name, number, _no_patient(resource))
                    else:
                        dropped[rtype] += 1
                    continue
                decision = decide(resource, kb, index)
                if decision.item and decision.words and len(reading.words) < MAX_WORDS:
                    reading.words.setdefault(decision.item, decision.words)
                where = bucket(pid, partitions)
                if decision.keep:
                    reading.resources_kept += 1
                    spill.add(where, raw if raw.endswith(b"\n") else raw + b"\n")
                else:
                    dropped[decision.why] += 1
                    if decision.item:
                        spill.add(where, orjson.dumps(["u", pid, decision.item]) + b"\n")
        except ExportError as exc:
            reading.problem(name, 0, str(exc))
        done += file.size
        if progress is not None:
            progress(done)
    spill.flush()
    with open(directory / MEDICATIONS, "wb") as out:
        out.writelines(orjson.dumps(m) + b"\n" for m in medications)
    reading.dropped = dict(dropped.most_common())
    return reading


def _patient_compartment(resource: dict[str, Any]) -> bool:
    """Whether a resource says it is about someone (`subject` or `patient`) without naming a
    Patient we can read; those that name nobody (Organization, Practitioner) are not any
    patient's by nature."""
    return (
        resource.get("subject") is not None
        or resource.get("patient") is not None
        or (
            resource.get("resourceType")
            in ("Condition", "MedicationRequest", "MedicationStatement")
        )
    )


def _no_patient(resource: dict[str, Any]) -> str:
    rtype = resource.get("resourceType")
    rid = resource.get("id")
    name = f"{rtype}/{rid}" if isinstance(rid, str) else str(rtype)
    if rtype == "Patient":
        return f"{name}: a Patient without an id; its resources cannot be joined to it"
    return f"{name}: no reference to a Patient (subject or patient); it is nobody's, not read"


def read_partition(
    path: Path,
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[str]], int]:
    """A partition file's resources and markers by patient id, and how many lines could not be
    parsed (none, unless the file was damaged after it was written)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    markers: dict[str, list[str]] = {}
    damaged = 0
    if not path.exists():
        return groups, markers, damaged
    with open(path, "rb") as stream:
        for raw in stream:
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError:
                damaged += 1
                continue
            if isinstance(value, list):
                markers.setdefault(value[1], []).append(value[2])
                groups.setdefault(value[1], [])
                continue
            pid = patient_of(value)
            if pid is not None:
                groups.setdefault(pid, []).append(value)
    return groups, markers, damaged


def read_medications(directory: Path) -> list[dict[str, Any]]:
    path = directory / MEDICATIONS
    if not path.exists():
        return []
    with open(path, "rb") as stream:
        return [orjson.loads(line) for line in stream if line.strip()]


def remove_partitions(directory: Path) -> None:
    for name in os.listdir(directory):
        if name.startswith("part-") or name == MEDICATIONS:
            os.unlink(directory / name)
