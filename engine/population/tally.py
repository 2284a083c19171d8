"""What a population run found, counted: per partition as it is evaluated (`Tally`, small and
cheap to send between processes), then merged into the run's `PopulationSummary`."""

from __future__ import annotations

import datetime as dt
import heapq
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel, Field

from .partition import PatientRow
from .spill import Reading

MAX_LISTED = 10_000  # patient ids listed in the summary (the rows have every one)
TOP_CODES = 100  # unrecognised items ranked in the summary


@dataclass
class Tally:
    """Counts over some patients' rows (by patient: a patient counts once per rule, caveat or
    item)."""

    patients: int = 0
    evaluated: int = 0
    on_subject: int = 0
    warned: int = 0
    warning: list[str] = field(default_factory=list)  # some ids, with the MAX_LISTED least
    errors: list[str] = field(default_factory=list)  # the first MAX_LISTED
    errored: int = 0
    rules: Counter[str] = field(default_factory=Counter)
    caveats: Counter[str] = field(default_factory=Counter)
    undetermined: Counter[str] = field(default_factory=Counter)
    unrecognised: Counter[str] = field(default_factory=Counter)
    texts: dict[str, str] = field(default_factory=dict)  # rule id -> its statement
    damaged: int = 0  # spill lines that could not be parsed back
    cpu: float = 0.0  # CPU-seconds spent evaluating

    def add(self, pid: str, row: PatientRow | None) -> None:
        self.patients += 1
        if row is None:
            return
        self.evaluated += 1
        self.on_subject += row.on_subject_drug
        if row.warning:
            self.warned += 1
            self.warning.append(pid)
            if len(self.warning) > 2 * MAX_LISTED:
                self.warning = least(self.warning)
        if row.error:
            self.errored += 1
            if len(self.errors) < MAX_LISTED:
                self.errors.append(f"{pid}: {row.error}")
        caveats: set[str] = set()
        for s in row.statements:
            self.rules[s.rule] += 1
            self.texts.setdefault(s.rule, s.text)
            caveats.update(s.caveats)
        self.caveats.update(caveats)
        for u in row.undetermined:
            self.undetermined[u.rule] += 1
            self.texts.setdefault(u.rule, u.text)
        self.unrecognised.update(set(row.unrecognised) | set(row.also_unrecognised))

    def merge(self, other: Tally) -> None:
        self.patients += other.patients
        self.evaluated += other.evaluated
        self.on_subject += other.on_subject
        self.warned += other.warned
        self.warning = least([*self.warning, *other.warning])
        self.errored += other.errored
        self.errors = (self.errors + other.errors)[:MAX_LISTED]
        self.rules.update(other.rules)
        self.caveats.update(other.caveats)
        self.undetermined.update(other.undetermined)
        self.unrecognised.update(other.unrecognised)
        for rule, text in other.texts.items():
            self.texts.setdefault(rule, text)
        self.damaged += other.damaged
        self.cpu += other.cpu


def counted_rows(rows: Iterable[tuple[str, PatientRow | None]], tally: Tally) -> Iterator[bytes]:
    """The rows of the patients evaluated, each as compact JSON (without a newline), every
    patient counted in `tally` on the way."""
    for pid, row in rows:
        tally.add(pid, row)
        if row is not None:
            yield orjson.dumps(row.model_dump(mode="json"))


def least(ids: list[str]) -> list[str]:
    """The MAX_LISTED least of some patient ids, sorted: what the summary lists, in bounded
    memory whatever the population's size."""
    if len(ids) <= MAX_LISTED:
        return sorted(ids)
    return heapq.nsmallest(MAX_LISTED, ids)


class Count(BaseModel):
    """A rule, caveat or item, and how many evaluated patients have it."""

    key: str = Field(description="the rule id, caveat code or item")
    text: str = Field("", description="the statement, the caveat's label, or the item's words")
    patients: int = Field(description="evaluated patients it applies to")


class FailedPartition(BaseModel):
    """A partition that could not be evaluated twice: its patients have no row."""

    partition: str = Field(description="the partition's name, e.g. part-00003")
    patients: int | None = Field(
        description="the patients in it (with or without the subject drug), when known"
    )
    attempts: list[str] = Field(description="what ended each attempt")


class PopulationSummary(BaseModel):
    """A population run: what was read, who was evaluated, what applies across the population,
    the codes the pack should learn next, and anything that failed."""

    export: str = Field(description="the export's directory")
    as_of: dt.date = Field(description="the date ages and durations were computed on")
    as_of_from: str = Field(
        description="where that date came from: --as-of, the manifest's transactionTime, or today"
    )
    pack: dict[str, Any] = Field(description="the pack's id, version and digest")
    everyone: bool = Field(description="whether every patient was evaluated (--all)")
    engine: str = Field(description="what ran it: 'local (N workers)' or 'dask (address)'")
    partitions: int = Field(description="partitions the patients were grouped into")
    reading: Reading = Field(description="what reading the export found")
    patients: int = Field(description="patients grouped (a Patient or a resource naming one)")
    patients_evaluated: int = Field(description="patients given a row")
    patients_on_subject_drug: int = Field(description="patients with an order for the subject")
    patients_with_warning: int = Field(description="patients with a warning-level statement")
    warning_patients: list[str] = Field(
        description=f"their ids, sorted (the first {MAX_LISTED:,}; the rows have all)"
    )
    rules: list[Count] = Field(description="statements that apply, by patients, most first")
    caveats: list[Count] = Field(description="caveats of those statements, by patients")
    undetermined: list[Count] = Field(description="rules undetermined, by patients")
    unrecognised: list[Count] = Field(
        description=f"items not recognised, by patients evaluated (the first {TOP_CODES}): the "
        "codes the pack should learn next"
    )
    patient_errors: list[str] = Field(description="patients that could not be evaluated, and why")
    spill_lines_damaged: int = Field(
        0,
        description="lines of the partition files that could not be read back (the disk "
        "changed them after they were written): those patients' rows may lack them",
    )
    failed_partitions: list[FailedPartition] = Field(
        description="partitions that failed twice: their patients have no row"
    )
    seconds: dict[str, float] = Field(
        description="CPU-seconds spent reading and grouping, and evaluating (whole process tree)"
    )

    @property
    def complete(self) -> bool:
        """Whether every patient was evaluated and every line read."""
        return (
            not self.failed_partitions
            and not self.patient_errors
            and not (self.reading.unreadable or self.reading.unreadable_more)
        )


def counts(counter: Counter[str], texts: dict[str, str], limit: int | None = None) -> list[Count]:
    ranked = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return [Count(key=k, text=texts.get(k, ""), patients=n) for k, n in ranked]
