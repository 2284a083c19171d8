"""The embedded one-machine runner: read the export into partitions on disk (engine.population.
spill), then evaluate the partitions in worker processes (engine.workers: forked from this
process once the pack is compiled, so no worker compiles it again), a partition at a time each.

A worker that dies mid-partition (durable_rules is C: a crash takes the process with it), or
that reports an error, costs that partition's attempt only: the worker is replaced by a fresh
one and the partition tried once more. A partition that fails twice is recorded by name with
what ended each attempt, and its patients get no row; the run goes on with the others.

Memory stays bounded whatever the export's size: the reading holds one line and a bounded write
buffer; a worker holds one partition (about PARTITION_BYTES of the export, less what the
push-down dropped); the parent holds the counts.
"""

from __future__ import annotations

import datetime as dt
import os
import pickle
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import orjson

from ..errors import BatchError
from ..knowledge_base import KnowledgeBase
from ..workers import Crew
from .export import Export
from .partition import patient_rows
from .spill import (
    Reading,
    partition_path,
    read_medications,
    read_partition,
    spill_export,
)
from .tally import FailedPartition, Tally

ATTEMPTS = 2  # a partition is tried at most this often, each time on a fresh worker
Progress = Callable[[str, int, int], None]  # (phase, done, total)
Started = Callable[[int, int, int], None]  # (partition, attempt from 1, worker's pid)


@dataclass
class Outcome:
    """What a run of the partitions gave: the reading, the counts, the row files in partition
    order (a failed partition's is missing), what failed, and the CPU-seconds of each phase."""

    reading: Reading
    tally: Tally
    row_files: list[Path]
    failed: list[FailedPartition] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def rows_path(directory: Path, index: int) -> Path:
    return directory / f"rows-{index:05d}.jsonl"


def evaluate_spilled(
    kb: KnowledgeBase, directory: Path, index: int, as_of: dt.date, everyone: bool
) -> Tally:
    """Evaluate one partition file into its rows file (written whole, then renamed into place);
    the counts over its patients."""
    groups, markers, damaged = read_partition(partition_path(directory, index))
    medications = read_medications(directory)
    tally = Tally(damaged=damaged)
    target = rows_path(directory, index)
    temporary = target.with_suffix(".tmp")
    with open(temporary, "wb") as out:
        for pid, row in patient_rows(groups, kb, medications, as_of, everyone, markers):
            tally.add(pid, row)
            if row is not None:
                out.write(orjson.dumps(row.model_dump(mode="json")) + b"\n")
    os.replace(temporary, target)
    return tally


def run_local(
    export: Export,
    kb: KnowledgeBase,
    directory: Path,
    *,
    partitions: int,
    as_of: dt.date,
    everyone: bool,
    workers: int,
    progress: Progress | None = None,
    started: Started | None = None,
) -> Outcome:
    """Read `export` into `partitions` partitions under `directory` and evaluate them with up to
    `workers` worker processes. `started` is told of each attempt as it is sent to a worker."""
    cpu0 = time.process_time()
    total = export.bytes
    reading = spill_export(
        export,
        kb,
        directory,
        partitions,
        progress=(lambda done: progress("reading", done, total)) if progress else None,
    )
    cpu1 = time.process_time()
    children0 = _children_cpu()

    def serve(task: Any) -> Tally:
        return evaluate_spilled(kb, directory, *task)

    crew = Crew(serve, slots=1)
    tally = Tally()
    failed: list[FailedPartition] = []
    attempts: dict[int, list[str]] = {}
    pending = list(range(partitions))
    busy: dict[int, int] = {}  # worker -> partition
    done = 0

    def lost(slot: int, index: int, why: str) -> None:
        """A partition's attempt ended without its rows: a fresh worker takes the slot, and the
        partition goes first in the queue, unless that was its last attempt."""
        attempts.setdefault(index, []).append(why)
        crew.restart(slot)
        if len(attempts[index]) < ATTEMPTS:
            pending.insert(0, index)
        else:
            failed.append(_failure(directory, index, attempts[index]))

    if progress:
        progress("evaluating", 0, partitions)
    try:
        while pending or busy:
            while pending and len(busy) < min(workers, partitions):
                slot = next(i for i in range(len(crew.workers) + 1) if i not in busy)
                index = pending.pop(0)
                busy[slot] = index
                try:
                    crew.send(slot, pickle.dumps((index, as_of, everyone)))
                except BatchError as exc:  # it died before it could take the task
                    busy.pop(slot)
                    lost(slot, index, str(exc))
                    continue
                if started is not None:
                    started(index, len(attempts.get(index, [])) + 1, crew.workers[slot].pid)
            if not busy:
                continue
            ready = wait([crew.workers[slot].pipe for slot in busy])
            for slot in [s for s in busy if crew.workers[s].pipe in ready]:
                index = busy.pop(slot)
                try:
                    tally.merge(crew.receive(slot))
                except BatchError as exc:
                    lost(slot, index, str(exc))
                    continue
                done += 1
                if progress:
                    progress("evaluating", done, partitions)
    finally:
        crew.close()
    failed_at = {f.partition for f in failed}
    return Outcome(
        reading=reading,
        tally=tally,
        row_files=[
            rows_path(directory, i)
            for i in range(partitions)
            if partition_path(directory, i).stem not in failed_at
        ],
        failed=failed,
        seconds={
            "reading": round(cpu1 - cpu0, 3),
            "evaluating": round(time.process_time() - cpu1 + _children_cpu() - children0, 3),
        },
    )


def _failure(directory: Path, index: int, why: list[str]) -> FailedPartition:
    groups, _, _ = read_partition(partition_path(directory, index))
    return FailedPartition(
        partition=partition_path(directory, index).stem, patients=len(groups), attempts=why
    )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
