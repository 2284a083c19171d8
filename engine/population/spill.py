"""Reading an export into partitions on disk: each resource the push-down keeps is appended to a
spill file of its patient's partition (a stable hash of the patient id), so that every patient's
resources end up in one partition whatever the export's order, and no more than one partition
is ever held in memory.

The export is read in chunks (a file, or a byte range of a large uncompressed one: engine.
population.export.chunks_of), each by any worker; chunk C writes `part-P/C.ndjson` for each
partition P it has lines for, so a chunk read again after a crash replaces only its own files.
A line of a spill file is a kept resource, as the export wrote it; a marker
`["u", patient, item]` for an item not recognised whose resource was not kept (engine.population.
pushdown), so that the patient's row can still list it; or `["p", patient]` for a patient the
chunk saw only in resources it did not keep (so that `--all` gives them a row too). Medication
resources (which belong to no patient) go to `medications/C.ndjson`; the Medication files of the
export are read first, so that the push-down can see what an order's `medicationReference`
names.

Writes are buffered in memory up to a bound and appended to the files in turns, so the number of
partitions is not limited by how many files a process may hold open.
"""

from __future__ import annotations

import os
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, Field

from ..knowledge_base import KnowledgeBase
from .export import Chunk, DamagedFile, Export, chunk_lines, chunks_of, parse_line
from .pushdown import KEEP, decide, medication_index, patient_of

BUFFERED = 8 * 1024 * 1024  # bytes of spilled lines a chunk holds before writing them out
PARTITION_BYTES = 32 * 1024 * 1024  # export bytes (uncompressed) per partition, roughly
GZIP_RATIO = 8  # what a gzip-compressed NDJSON file is taken to expand to, for the estimate
MAX_PARTITIONS = 4096
MAX_PROBLEMS = 1000  # unreadable lines listed one by one; the rest are counted
MAX_WORDS = 20_000  # distinct unrecognised codes whose words are kept for the report
MEDICATIONS = "medications"  # the folder Medication resources are spilled to


class Unreadable(BaseModel):
    """A line of the export that could not be read, with where it is."""

    file: str = Field(description="the file's name in the export")
    line: int = Field(description="the line's number, from 1 (0: the file as a whole)")
    reason: str = Field(description="why it could not be read")


class Reading(BaseModel):
    """What reading an export (or a chunk of it) found: counts, and every line that could not be
    read."""

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
    cpu_seconds: float = Field(0.0, description="CPU-seconds spent reading and grouping")

    def problem(self, file: str, line: int, reason: str) -> None:
        if len(self.unreadable) < MAX_PROBLEMS:
            self.unreadable.append(Unreadable(file=file, line=line, reason=reason))
        else:
            self.unreadable_more += 1

    def merge(self, part: Reading) -> None:
        self.files += part.files
        self.resources_read += part.resources_read
        self.resources_kept += part.resources_kept
        self.patients_seen += part.patients_seen
        self.cpu_seconds += part.cpu_seconds
        dropped = Counter(self.dropped)
        dropped.update(part.dropped)
        self.dropped = dict(dropped.most_common())
        for u in part.unreadable:
            self.problem(u.file, u.line, u.reason)
        self.unreadable_more += part.unreadable_more
        for item, words in part.words.items():
            if len(self.words) < MAX_WORDS:
                self.words.setdefault(item, words)


def partitions_for(export: Export) -> int:
    """How many partitions an export is split into: about PARTITION_BYTES of NDJSON each."""
    estimate = sum(f.size * (GZIP_RATIO if f.compressed else 1) for f in export.files)
    return max(1, min(MAX_PARTITIONS, -(-estimate // PARTITION_BYTES)))


def bucket(pid: str, partitions: int) -> int:
    """A patient's partition: the same in every process and on every run."""
    return zlib.crc32(pid.encode("utf-8", "surrogatepass")) % partitions


def is_medication_file(name: str, rtype: str | None) -> bool:
    return rtype == "Medication" or name.startswith("Medication.")


def export_chunks(export: Export) -> tuple[list[Chunk], list[Chunk]]:
    """The chunks of an export's Medication files (read first, so that the push-down can see
    what an order's `medicationReference` names), and the chunks of its other files."""
    medication: list[Chunk] = []
    other: list[Chunk] = []
    for file in export.files:
        kind = medication if is_medication_file(file.path.name, file.type) else other
        kind.extend(chunks_of(file))
    return medication, other


def sort_chunk(
    chunk: Chunk,
    kb: KnowledgeBase,
    medications: dict[str, dict[str, Any]],
    partitions: int,
    reading: Reading,
) -> Iterator[tuple[int, bytes]]:
    """The lines of a chunk the push-down keeps, each with its partition (-1: a Medication
    resource, for every partition), and markers for the items it counts; what it found is
    added to `reading`."""
    name = chunk[1]
    if chunk[2] == 0:
        reading.files += 1
    dropped: Counter[str] = Counter()
    placed: set[str] = set()  # patients with a line in the spill from this chunk
    unplaced: set[str] = set()  # patients seen here only in resources that were not kept
    try:
        for number, raw in chunk_lines(chunk):
            if isinstance(raw, str):  # a line too long to hold
                reading.problem(name, number, raw)
                continue
            resource = parse_line(raw)
            if isinstance(resource, str):
                reading.problem(name, number, resource)
                continue
            reading.resources_read += 1
            rtype = resource["resourceType"]
            line = raw if raw.endswith(b"\n") else raw + b"\n"
            if rtype == "Medication":
                reading.resources_kept += 1
                yield -1, line
                continue
            if rtype == "Patient":
                reading.patients_seen += 1
            pid = patient_of(resource)
            if pid is None:
                if rtype == "Patient" or _about_someone(resource):
                    reading.problem(name, number, _no_patient(resource))
                else:
                    dropped[rtype] += 1
                continue
            try:
                decision = decide(resource, kb, medications)
            except Exception:  # (a shape nothing foresaw: kept, for the mapping to report)
                decision = KEEP
            if decision.item and decision.words and len(reading.words) < MAX_WORDS:
                reading.words.setdefault(decision.item, decision.words)
            where = bucket(pid, partitions)
            if decision.keep:
                reading.resources_kept += 1
                placed.add(pid)
                yield where, line
            else:
                dropped[decision.why] += 1
                if decision.item:
                    placed.add(pid)
                    yield where, orjson.dumps(["u", pid, decision.item]) + b"\n"
                elif pid not in placed:
                    unplaced.add(pid)
    except DamagedFile as exc:
        reading.problem(name, exc.line, exc.reason)
    for pid in unplaced - placed:  # so that --all gives them a row, and they are counted
        yield bucket(pid, partitions), orjson.dumps(["p", pid]) + b"\n"
    total = Counter(reading.dropped)
    total.update(dropped)
    reading.dropped = dict(total)


def spill_chunk(
    chunk: Chunk,
    number: int,
    kb: KnowledgeBase,
    directory: Path,
    partitions: int,
    medications: dict[str, dict[str, Any]],
) -> Reading:
    """Read chunk `number` into its spill files in `directory`; what it found. Files a previous
    attempt at the same chunk left are replaced."""
    remove_chunk(directory, number)
    reading = Reading()
    buffers: dict[int, list[bytes]] = {}
    held = 0
    for where, line in sort_chunk(chunk, kb, medications, partitions, reading):
        buffers.setdefault(where, []).append(line)
        held += len(line)
        if held >= BUFFERED:
            _flush(directory, number, buffers)
            held = 0
    _flush(directory, number, buffers)
    return reading


def _flush(directory: Path, number: int, buffers: dict[int, list[bytes]]) -> None:
    for where, lines in buffers.items():
        if lines:
            folder = directory / (MEDICATIONS if where < 0 else f"part-{where:05d}")
            folder.mkdir(exist_ok=True)
            with open(folder / f"{number:05d}.ndjson", "ab") as out:
                out.write(b"".join(lines))
            lines.clear()


def remove_chunk(directory: Path, number: int) -> None:
    """Remove what chunk `number` wrote (a lost attempt's, before it is read again)."""
    name = f"{number:05d}.ndjson"
    for folder in os.listdir(directory):
        path = directory / folder / name
        if path.exists():
            path.unlink()


def _about_someone(resource: dict[str, Any]) -> bool:
    """Whether a resource says it is about someone (`subject` or `patient`) without naming a
    Patient that can be read; those that name nobody (Organization, Practitioner) are nobody's
    by nature."""
    return (
        resource.get("subject") is not None
        or resource.get("patient") is not None
        or resource.get("resourceType") in ("Condition", "MedicationRequest", "MedicationStatement")
    )


def _no_patient(resource: dict[str, Any]) -> str:
    rtype = resource.get("resourceType")
    rid = resource.get("id")
    name = f"{rtype}/{rid}" if isinstance(rid, str) else str(rtype)
    if rtype == "Patient":
        return f"{name}: a Patient without an id; its resources cannot be joined to it"
    return f"{name}: no reference to a Patient (subject or patient); it is nobody's, not read"


def partition_files(directory: Path, index: int) -> list[Path]:
    folder = directory / f"part-{index:05d}"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def group_lines(
    lines: Iterator[bytes],
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[str]], int]:
    """Spilled lines by patient id: resources, markers, and how many could not be parsed back."""
    groups: dict[str, list[dict[str, Any]]] = {}
    markers: dict[str, list[str]] = {}
    damaged = 0
    for raw in lines:
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            damaged += 1
            continue
        if isinstance(value, list):  # ["u", patient, item] or ["p", patient]
            if value[0] == "u":
                markers.setdefault(value[1], []).append(value[2])
            groups.setdefault(value[1], [])
            continue
        pid = patient_of(value)
        if pid is not None:
            groups.setdefault(pid, []).append(value)
    return groups, markers, damaged


def read_partition(
    directory: Path, index: int
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[str]], int]:
    """A partition's resources and markers by patient id, from all its spill files."""

    def lines() -> Iterator[bytes]:
        for path in partition_files(directory, index):
            with open(path, "rb") as stream:
                yield from stream

    return group_lines(lines())


def count_patients(directory: Path, index: int) -> int:
    """How many patients a partition holds, read a line at a time."""
    seen: set[str] = set()
    for path in partition_files(directory, index):
        with open(path, "rb") as stream:
            for raw in stream:
                try:
                    value = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    continue
                pid = value[1] if isinstance(value, list) else patient_of(value)
                if isinstance(pid, str):
                    seen.add(pid)
    return len(seen)


def read_medications(directory: Path) -> list[dict[str, Any]]:
    """Every Medication resource the reading found (each id once)."""
    seen: dict[str, dict[str, Any]] = {}
    anonymous: list[dict[str, Any]] = []
    folder = directory / MEDICATIONS
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        with open(path, "rb") as stream:
            for line in stream:
                resource = orjson.loads(line)
                rid = resource.get("id")
                if isinstance(rid, str):
                    seen.setdefault(rid, resource)
                else:
                    anonymous.append(resource)
    return [*seen.values(), *anonymous]


def medication_lookup(directory: Path) -> dict[str, dict[str, Any]]:
    return medication_index(read_medications(directory))
