"""Evaluating many cases: streamed, in input order, in parallel worker processes.

The parent process reads the input and writes the output; workers (forked from a parent that has
already compiled the pack, so each worker compiles nothing) do everything in between. JSON Lines
reach them as blocks of bytes that they split and parse themselves; they send back each chunk's
counts, and records only for the cases a report will show. Output lines are made ready by the
workers too (for JSON Lines, written to spool files the parent copies in the kernel), so the
parent stays light. At most a few chunks per worker are in flight at once, which bounds memory
whatever the size of the input.
"""

from __future__ import annotations

import contextlib
import gc
import json
import multiprocessing as mp
import os
import pickle
import queue
import signal
import tempfile
import threading
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal, NamedTuple

from .cases import CaseEntry, Outcome, cases_in, entries_of, run_case
from .errors import BatchError
from .knowledge_base import KnowledgeBase, load_knowledge_base

CHUNK = 64  # cases per task sent to a worker
WINDOW = 8  # chunks in flight per worker


class Record(NamedTuple):
    """One evaluated case, as a worker sends it back: a tuple, cheap to pickle."""

    case: str
    path: str
    line: int | None
    status: str
    problems: list[str]
    applied: list[tuple[str, str, tuple[str, ...]]]  # (rule, category, caveat codes)
    undetermined: list[str]


Output = Literal["outcomes", "records", "lines"]
Frame = tuple[bytes, bytes]  # what goes before and after each case's JSON record in the output
JSON_LINES: Frame = (b"", b"\n")


def json_line(outcome: Outcome) -> bytes:
    """The JSON Lines record of a case: its id, place, status, problems and full result."""
    head = json.dumps(
        {
            "case": outcome.case,
            "path": outcome.path,
            "line": outcome.line,
            "status": outcome.status,
            "problems": outcome.problems,
        },
        ensure_ascii=False,
    ).encode()
    result = outcome.result.model_dump_json().encode() if outcome.result else b"null"
    return head[:-1] + b', "result": ' + result + b"}"


def record_of(outcome: Outcome) -> Record:
    result = outcome.result
    applied = (
        [(s.rule, s.category, tuple(c.code for c in s.caveats)) for s in result.statements]
        if result
        else []
    )
    return Record(
        case=outcome.case,
        path=outcome.path,
        line=outcome.line,
        status=outcome.status,
        problems=list(outcome.problems),
        applied=applied,
        undetermined=[u.rule for u in result.undetermined] if result else [],
    )


# -- worker side ---------------------------------------------------------------------------------

_worker: tuple[KnowledgeBase, bool, bool] | None = None  # set once in each worker process


def _init_worker(
    kb: KnowledgeBase | None, pack_path: str | None, background: bool, draft: bool
) -> None:
    """Runs once in each worker: the pack is inherited (fork) or loaded once (spawn)."""
    global _worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    _worker = (kb if kb is not None else load_knowledge_base(pack_path), background, draft)


class Tally(NamedTuple):
    """Counts over some cases, made where they are evaluated so the parent only adds them up."""

    status: Counter[str]
    categories: Counter[str]
    rules: Counter[str]
    undetermined: Counter[str]
    caveats: Counter[str]

    @classmethod
    def of(cls, outcomes: list[Outcome]) -> Tally:
        tally = cls(Counter(), Counter(), Counter(), Counter(), Counter())
        for outcome in outcomes:
            tally.status[outcome.status] += 1
            if outcome.result is None:
                continue
            for statement in outcome.result.statements:
                tally.categories[statement.category] += 1
                tally.rules[statement.rule] += 1
                tally.caveats.update([caveat.code for caveat in statement.caveats])
            tally.undetermined.update([u.rule for u in outcome.result.undetermined])
        return tally


class Chunk(NamedTuple):
    size: int  # the cases in the chunk
    records: list[Record]  # every case's, or only those a person will read (`run_chunks`' detail)
    tally: Tally
    # With output "lines", every case's JSON record, framed, as bytes made in this process ...
    text: bytes | None = None
    # ... or, made in a worker, in a file of its: (path, size). The parent copies it into the
    # output in the kernel: 4 KB a case need not be pickled, piped and unpickled.
    spool: tuple[str, int] | None = None


PROBLEMS = ("fail", "error")  # the statuses whose records always come back


def _evaluate(
    kb: KnowledgeBase,
    background: bool,
    draft: bool,
    chunk: list[Any],
    output: Output,
    detail: bool = True,
    frame: Frame = JSON_LINES,
) -> Any:
    outcomes = [run_case(kb, e, background, draft) for item in chunk for e in entries_of(item)]
    if output == "outcomes":
        return outcomes
    kept = outcomes if detail else [o for o in outcomes if o.status in PROBLEMS]
    records = [record_of(o) for o in kept]
    tally = Tally.of(outcomes)
    if output == "records":
        return Chunk(len(outcomes), records, tally)
    before, after = frame
    parts: list[bytes] = []
    for outcome in outcomes:
        parts += (before, json_line(outcome), after)
    text = b"".join(parts)
    if _spool is not None:  # in a worker
        return Chunk(len(outcomes), records, tally, spool=(_spool.write(text), len(text)))
    return Chunk(len(outcomes), records, tally, text=text)


class _Spool:
    """A worker's slot files: with at most WINDOW chunks in flight per worker, a slot is written
    again only after the parent has copied what it held. A slot is overwritten in place, never
    truncated: truncating a file and writing it again makes some file systems (ext4) write it
    out to disk at once, a disk write per chunk for files that are only ever read back."""

    def __init__(self, directory: str, worker: int) -> None:
        self.paths = [os.path.join(directory, f"{worker}-{i}.jsonl") for i in range(WINDOW + 1)]
        self.files = [os.open(path, os.O_RDWR | os.O_CREAT, 0o600) for path in self.paths]
        self.count = 0

    def write(self, data: bytes) -> str:
        slot = self.count % len(self.paths)
        self.count += 1
        view, at = memoryview(data), 0
        while at < len(view):
            at += os.pwrite(self.files[slot], view[at:], at)
        return self.paths[slot]


_spool: _Spool | None = None  # set in a worker when the parent spools


def _in_worker(chunk: list[Any], output: Output, detail: bool, frame: Frame) -> list[Any]:
    assert _worker is not None, "the worker was not initialised"
    return _evaluate(*_worker, chunk, output, detail, frame)


# -- parent side ---------------------------------------------------------------------------------


def default_workers() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _chunks(items: Iterable[Any], size: int) -> Iterator[tuple[list[Any], int]]:
    """Items grouped to hold about `size` cases each (a block of JSON Lines is never split), with
    the number of cases in each group."""
    chunk: list[Any] = []
    cases = 0
    for item in items:
        chunk.append(item)
        cases += cases_in(item)
        if cases >= size:
            yield chunk, cases
            chunk, cases = [], 0
    if chunk:
        yield chunk, cases


def run_parallel(
    items: Iterable[Any],
    *,
    kb: KnowledgeBase,
    workers: int,
    include_background: bool = False,
    include_draft: bool = False,
    output: Literal["outcomes", "records"] = "outcomes",
    chunk_size: int = CHUNK,
) -> Iterator[Any]:
    """For each case, in input order: its `Outcome`, or its `Record` (output "records": the part
    of an outcome a report counts, cheaper to send back). An item is a scenario mapping, a
    `CaseEntry` or a `Lines` block of `read_cases`."""
    for chunk in run_chunks(
        items,
        kb=kb,
        workers=workers,
        include_background=include_background,
        include_draft=include_draft,
        output=output,
        chunk_size=chunk_size,
    ):
        yield from (chunk if output == "outcomes" else chunk.records)


def run_chunks(
    items: Iterable[Any],
    *,
    kb: KnowledgeBase,
    workers: int,
    include_background: bool = False,
    include_draft: bool = False,
    output: Output = "records",
    chunk_size: int = CHUNK,
    detail: int | None = None,
    frame: Frame = JSON_LINES,
) -> Iterator[Any]:
    """As `run_parallel`, a chunk at a time: a list of outcomes, or a `Chunk` with its counts (a
    report writes a chunk in one go). Output "lines" adds every case's JSON record, between the
    two parts of `frame`, as the chunk's text or spool. With `detail`, a chunk has the records of
    the first `detail` cases of the input and after them only those of cases that failed or were
    in error (a report need not have the rest made and sent)."""
    sent = 0

    def wanted(cases: int) -> bool:
        nonlocal sent
        sent += cases
        return detail is None or sent - cases < detail

    if workers <= 1:
        for chunk, cases in _chunks(items, chunk_size):
            yield _evaluate(
                kb, include_background, include_draft, chunk, output, wanted(cases), frame
            )
        return
    methods = mp.get_all_start_methods()
    if "fork" in methods:
        context = mp.get_context("fork")
        initargs: tuple[Any, ...] = (kb, None, include_background, include_draft)
    elif kb.root.is_dir():
        context = mp.get_context("spawn")
        initargs = (None, str(kb.root), include_background, include_draft)
    else:  # an in-memory pack cannot be sent to a spawned process
        yield from run_chunks(
            items,
            kb=kb,
            workers=1,
            include_background=include_background,
            include_draft=include_draft,
            output=output,
            chunk_size=chunk_size,
            detail=detail,
            frame=frame,
        )
        return
    # Objects the workers inherit are left alone by their garbage collector: scanning them would
    # copy every page they sit on into each worker (copy-on-write), for nothing.
    gc.collect()
    gc.freeze()
    spool_dir = tempfile.TemporaryDirectory(prefix="caveat-spool-")
    crew = _Crew(context, workers, initargs, spool_dir.name)
    try:
        # Chunk i goes to worker i % n and its results are read back in the same order, so the
        # output keeps the input's order with no reordering buffer, all in this one thread.
        pending: deque[int] = deque()
        for number, (chunk, cases) in enumerate(_chunks(items, chunk_size)):
            crew.send(number % workers, (chunk, output, wanted(cases), frame))
            pending.append(number % workers)
            while len(pending) >= workers * WINDOW:
                yield crew.receive(pending.popleft())
        while pending:
            yield crew.receive(pending.popleft())
        crew.close()
    except BaseException:
        crew.kill()
        raise
    finally:
        gc.unfreeze()
        spool_dir.cleanup()


class _Crew:
    """Worker processes, each with its own pipe: no helper threads in the parent."""

    def __init__(
        self, context: Any, workers: int, initargs: tuple[Any, ...], spool_dir: str
    ) -> None:
        self.pipes = []
        self.processes = []
        for index in range(workers):
            ours, theirs = context.Pipe()
            args = (theirs, initargs, spool_dir, index)
            process = context.Process(target=_work, args=args, daemon=True)
            process.start()
            theirs.close()
            self.pipes.append(ours)
            self.processes.append(process)

    def send(self, worker: int, task: Any) -> None:
        try:
            self.pipes[worker].send_bytes(pickle.dumps(task, pickle.HIGHEST_PROTOCOL))
        except (BrokenPipeError, ConnectionResetError):
            # (not left to propagate: a broken pipe means "the reader went away" to the CLI,
            # which is a quiet success when that reader is `head` on standard output)
            raise self._died(worker) from None

    def receive(self, worker: int) -> list[Any]:
        try:
            kind, payload = pickle.loads(self.pipes[worker].recv_bytes())
        except (EOFError, ConnectionResetError):
            raise self._died(worker) from None
        if kind == "error":
            raise BatchError(f"batch worker {worker} failed: {payload}")
        return payload

    def _died(self, worker: int) -> BatchError:
        self.processes[worker].join(timeout=5)
        code = self.processes[worker].exitcode
        return BatchError(f"batch worker {worker} died (exit code {code})")

    def close(self) -> None:
        """Tell the workers to stop once every result is in; one that already went is fine."""
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send_bytes(pickle.dumps(None))
        for process in self.processes:
            process.join(timeout=10)
        self.kill()

    def kill(self) -> None:
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        for process in self.processes:
            process.join(timeout=10)
        for pipe in self.pipes:
            pipe.close()


def _work(pipe: Any, initargs: tuple[Any, ...], spool_dir: str, index: int) -> None:
    """A worker's life: evaluate chunks until told to stop (a None task).

    A reader thread takes tasks off the pipe as soon as they come, so the parent never blocks
    sending a task while this worker blocks sending results it has not yet read: no deadlock,
    whatever the size of a chunk."""
    global _spool
    _init_worker(*initargs)
    _spool = _Spool(spool_dir, index)
    tasks: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def read() -> None:
        while True:
            try:
                task = pickle.loads(pipe.recv_bytes())
            except (EOFError, OSError):
                task = None
            tasks.put(task)
            if task is None:
                return

    threading.Thread(target=read, daemon=True).start()
    while (task := tasks.get()) is not None:
        try:
            reply: tuple[str, Any] = ("ok", _in_worker(*task))
        except Exception as exc:  # a bug: report it instead of hanging the parent
            reply = ("error", f"{type(exc).__name__}: {exc}")
        pipe.send_bytes(pickle.dumps(reply, pickle.HIGHEST_PROTOCOL))


def evaluate_many(
    cases: Iterable[Mapping[str, Any] | CaseEntry],
    *,
    workers: int | None = None,
    knowledge_base: KnowledgeBase | None = None,
    include_background: bool = False,
    include_draft: bool = False,
) -> Iterator[Outcome]:
    """Evaluate scenarios or cases, yielding one `Outcome` per input, in input order.

    Each input is a scenario mapping, or a case (a scenario with `description` and `expect`).
    Bad input does not stop the run: its outcome has status "error" and the problems. Work is
    spread over `workers` processes (default: the number of cores)."""
    kb = knowledge_base if knowledge_base is not None else load_knowledge_base()
    yield from run_parallel(
        cases,
        kb=kb,
        workers=default_workers() if workers is None else workers,
        include_background=include_background,
        include_draft=include_draft,
        output="outcomes",
    )
