"""The embedded one-machine runner: worker processes (engine.workers: forked from this process
once the pack is compiled, so no worker compiles it again) read the export's chunks into
partition files on disk (engine.population.spill), then evaluate the partitions, a task at a
time each. The export's Medication files are read first, here, so that every worker can see
what an order's `medicationReference` names.

A worker that dies mid-task (durable_rules is C: a crash takes the process with it), or that
reports an error, costs that task's attempt only: the worker is replaced by a fresh one and the
task tried once more (a chunk's spill files from the lost attempt are replaced). A partition
that fails twice is recorded by name with what ended each attempt, and its patients get no row;
a chunk that cannot be read twice is recorded as unreadable, with its file; the run goes on.

Memory stays bounded whatever the export's size: a reading worker holds a line and a bounded
write buffer; an evaluating worker holds one partition (about PARTITION_BYTES of the export, less
what the push-down dropped); the parent holds the counts.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import pickle
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import BatchError, CaveatError
from ..knowledge_base import KnowledgeBase
from ..workers import Crew
from .export import Chunk, Export
from .partition import patient_rows
from .spill import (
    Reading,
    count_patients,
    export_chunks,
    medication_lookup,
    read_medications,
    read_partition,
    remove_chunk,
    spill_chunk,
)
from .tally import FailedPartition, Tally, counted_rows

ATTEMPTS = 2  # a task is tried at most this often, each time on a fresh worker
Progress = Callable[[str, int, int], None]  # (phase, done, total)
# Told of each attempt at a partition just before it is sent: (partition, attempt from 1, the
# pid of the worker it goes to). For progress, and for the tests, which kill that worker.
Started = Callable[[int, int, int], None]


@dataclass
class Outcome:
    """What a run gave: the reading, the counts, the row files in partition order (a failed
    partition's is missing), what failed, and the CPU-seconds of each phase."""

    reading: Reading
    tally: Tally
    row_files: list[Path]
    failed: list[FailedPartition] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def rows_path(directory: Path, index: int) -> Path:
    return directory / f"rows-{index:05d}.jsonl"


def partition_name(index: int) -> str:
    return f"part-{index:05d}"


class OutOfSpace(CaveatError):
    """The disk of the partition files is full: the run cannot go on (and is not retried)."""


class _NoSpace(NamedTuple):
    """A worker's answer when its disk was full (not an error to retry: it would fail again)."""

    why: str


_medications: dict[str, list[dict[str, Any]]] = {}  # per process: spill folder -> resources


def evaluate_spilled(
    kb: KnowledgeBase, directory: Path, index: int, as_of: dt.date, everyone: bool
) -> Tally:
    """Evaluate one partition into its rows file (written whole, then renamed into place); the
    counts over its patients. The Medication resources are read once per process."""
    groups, markers, damaged = read_partition(directory, index)
    medications = _medications.get(str(directory))
    if medications is None:
        medications = _medications[str(directory)] = read_medications(directory)
    tally = Tally(damaged=damaged)
    target = rows_path(directory, index)
    temporary = target.with_suffix(".tmp")
    with open(temporary, "wb") as out:
        rows = patient_rows(groups, kb, medications, as_of, everyone, markers)
        out.writelines(line + b"\n" for line in counted_rows(rows, tally))
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
    `workers` worker processes. `started` is told of each partition's attempt before it is sent."""
    cpu0, children0 = time.process_time(), _children_cpu()
    medication, other = export_chunks(export)
    chunks = medication + other  # (numbered so: a chunk's number names its spill files)
    reading = Reading()
    for number, chunk in enumerate(medication):  # here, before any worker: they read these
        reading.merge(spill_chunk(chunk, number, kb, directory, partitions, {}))
    reading.cpu_seconds = time.process_time() - cpu0
    medications = medication_lookup(directory)
    rest = range(len(medication), len(chunks))
    sizes = {i: _size(chunks[i]) for i in rest}
    total = sum(sizes.values())
    tasks: list[tuple[str, int]] = [("read", i) for i in rest]
    tally = Tally()
    failed: list[FailedPartition] = []
    done = {"bytes": 0, "partitions": 0}

    def serve(task: Any) -> Any:
        kind, index = task
        cpu = time.process_time()
        try:
            if kind == "read":
                got = spill_chunk(chunks[index], index, kb, directory, partitions, medications)
                got.cpu_seconds += time.process_time() - cpu
                return got
            tallied = evaluate_spilled(kb, directory, index, as_of, everyone)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                return _NoSpace(exc.strerror or str(exc))
            raise
        tallied.cpu += time.process_time() - cpu
        return tallied

    def finished(task: tuple[str, int], value: Any) -> None:
        kind, index = task
        if isinstance(value, _NoSpace):
            raise OutOfSpace(
                f"no space left in {directory.parent} for the partition files ({value.why}): "
                "give --spill-dir on a disk with room for the resources the export keeps"
            )
        if kind == "read":
            reading.merge(value)
            done["bytes"] += sizes[index]
            if progress:
                progress("reading", done["bytes"], total)
        else:
            tally.merge(value)
            done["partitions"] += 1
            if progress:
                progress("evaluating", done["partitions"], partitions)

    def gave_up(task: tuple[str, int], why: list[str]) -> None:
        kind, index = task
        if kind == "read":
            _, name, start, end, line = chunks[index]
            remove_chunk(directory, index)  # (what a lost attempt wrote is not evaluated)
            at = "" if end < 0 else f" (bytes {start:,} to {end:,}, from line {line:,})"
            reading.problem(name, 0, f"could not be read{at}: {' / '.join(why)}")
        else:
            patients = count_patients(directory, index)
            failed.append(
                FailedPartition(partition=partition_name(index), patients=patients, attempts=why)
            )

    def sending(task: tuple[str, int], attempt: int, pid: int) -> None:
        if task[0] == "evaluate" and started is not None:
            started(task[1], attempt, pid)

    crew = Crew(serve, slots=1)
    stopped = True
    try:
        if progress and tasks:
            progress("reading", 0, total)
        _run_tasks(crew, tasks, workers, finished, gave_up, sending)
        if progress:
            progress("evaluating", 0, partitions)
        _run_tasks(
            crew, [("evaluate", i) for i in range(partitions)], workers, finished, gave_up, sending
        )
        stopped = False
    finally:
        if stopped:  # Ctrl-C, a signal, an error: the workers are stopped now, not waited for
            crew.kill()
        else:
            crew.close()
    cpu = time.process_time() - cpu0 + _children_cpu() - children0
    lost = {f.partition for f in failed}
    return Outcome(
        reading=reading,
        tally=tally,
        row_files=[
            rows_path(directory, i) for i in range(partitions) if partition_name(i) not in lost
        ],
        failed=failed,
        seconds=_split(cpu, reading, tally),
    )


def _run_tasks(
    crew: Crew,
    tasks: list[tuple[str, int]],
    workers: int,
    finished: Callable[[tuple[str, int], Any], None],
    gave_up: Callable[[tuple[str, int], list[str]], None],
    sending: Callable[[tuple[str, int], int, int], None],
) -> None:
    """Run tasks on the crew, a task in flight per worker; a task whose attempt ends without an
    answer goes again, first, to a fresh worker, until it has had ATTEMPTS."""
    pending = list(tasks)
    attempts: dict[tuple[str, int], list[str]] = {}
    busy: dict[int, tuple[str, int]] = {}  # worker slot -> task
    limit = max(1, min(workers, len(tasks)))

    def lost(slot: int, task: tuple[str, int], why: str) -> None:
        attempts.setdefault(task, []).append(why)
        crew.restart(slot)
        if len(attempts[task]) < ATTEMPTS:
            pending.insert(0, task)
        else:
            gave_up(task, attempts[task])

    while pending or busy:
        while pending and len(busy) < limit:
            slot = next(i for i in range(len(crew.workers) + 1) if i not in busy)
            task = pending.pop(0)
            try:
                sending(task, len(attempts.get(task, [])) + 1, crew.ready(slot))
                crew.send(slot, pickle.dumps(task))
            except BatchError as exc:  # it could not start, or died before it took the task
                if slot < len(crew.workers):
                    lost(slot, task, str(exc))
                    continue
                raise
            busy[slot] = task
        if not busy:
            continue
        ready = wait([crew.workers[slot].pipe for slot in busy])
        for slot in [s for s in busy if crew.workers[s].pipe in ready]:
            task = busy.pop(slot)
            try:
                value = crew.receive(slot)
            except BatchError as exc:
                lost(slot, task, str(exc))
                continue
            finished(task, value)


def _size(chunk: Chunk) -> int:
    path, _, start, end, _ = chunk
    return (end - start) if end >= 0 else os.path.getsize(path)


def _split(cpu: float, reading: Reading, tally: Tally) -> dict[str, float]:
    """CPU-seconds of the whole process tree, and the parts of it the tasks measured: reading
    and grouping (into partition files), and evaluating; the rest is the parent's and the
    workers' own (forking, sending, waiting, writing the output)."""
    return {
        "total": round(cpu, 3),
        "reading and grouping": round(reading.cpu_seconds, 3),
        "evaluating": round(tally.cpu, 3),
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
