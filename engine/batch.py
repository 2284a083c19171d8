"""Evaluating many cases: streamed, in input order, in parallel worker processes.

The parent process reads the input and writes the output; workers (forked from a parent that has
already compiled the pack, so each worker compiles nothing) do everything in between. JSON Lines
reach them as blocks of bytes that they split and parse themselves; they send back each chunk's
counts, and records only for the cases a report will show. Output lines are made ready by the
workers too (for JSON Lines, written to spool files the parent copies in the kernel), so the
parent stays light. At most a few chunks per worker are in flight at once, which bounds memory
whatever the size of the input. Starting, stopping and cleaning up after the workers is
engine.workers' part.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import pickle
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal, NamedTuple

from . import jsontext
from .casefiles import CaseEntry, Lines, cases_in, entries_of
from .cases import Outcome, inputs_line, run_case
from .cleantext import no_surrogates
from .knowledge_base import KnowledgeBase, load_knowledge_base
from .result import Result
from .workers import MAX_WORKERS, Crew, spool

CHUNK = 64  # cases per task sent to a worker
WINDOW = 8  # chunks in flight per worker
# The garbage collector's first threshold while a batch runs (Python's default is 700). An
# evaluation makes some fifty short-lived containers and no cycles, so at the default the
# collector ran every dozen cases, for nothing; with the pack frozen out of its sight too
# (gc.freeze), it took a fifth of a batch's time.
GC_YOUNG = 20_000


@contextlib.contextmanager
def _collector_tuned() -> Iterator[None]:
    """The garbage collector set for a batch, and set back after it: what exists is frozen out
    of its sight (workers forked meanwhile need not copy the pages it would scan, copy-on-write),
    and it runs less often (workers forked meanwhile inherit that too)."""
    gc.collect()
    gc.freeze()
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], GC_YOUNG), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


class Record(NamedTuple):
    """One evaluated case, as a worker sends it back: a tuple, cheap to pickle."""

    case: str
    path: str
    line: int | None
    status: str
    problems: list[str]
    applied: list[tuple[str, str, tuple[str, ...]]]  # (rule, category, caveat codes)
    undetermined: list[str]
    description: str | None = None
    inputs: str | None = None  # the scenario in a line
    rejected: bool = False  # rejected as bad input, as the case expected
    needs: dict[str, list[str]] | None = None  # undetermined rule -> what would decide it
    detail: dict[str, Any] | None = None  # the result, for a report's expandable row


Output = Literal["outcomes", "records", "lines"]
Frame = tuple[bytes, bytes]  # what goes before and after each case's JSON record in the output
JSON_LINES: Frame = (b"", b"\n")


def json_line(outcome: Outcome, kb: KnowledgeBase | None = None, plain: bool = False) -> bytes:
    """The JSON Lines record of a case: its id, place, status, problems and full result, as
    compact JSON. A file name that is not UTF-8 (its bytes held as surrogates) is written with
    `\\xff` escapes. orjson writes it (from text kept per rule of `kb`); with `plain`, json and
    pydantic do, byte for byte the same (the path the fast one is tested against)."""
    fields: dict[str, Any] = {
        "case": outcome.case,
        "path": outcome.path,
        "line": outcome.line,
        "status": outcome.status,
        "problems": outcome.problems,
    }
    if outcome.notes:
        fields["notes"] = outcome.notes
    try:
        return _line(fields, outcome.result, kb, plain)
    except (UnicodeEncodeError, TypeError):  # (orjson's JSONEncodeError is a TypeError)
        fields["case"] = no_surrogates(outcome.case)  # a name held as surrogates
        fields["path"] = no_surrogates(outcome.path)
        fields["problems"] = [no_surrogates(p) for p in outcome.problems]
        return _line(fields, outcome.result, kb, plain)


def _line(
    fields: dict[str, Any], result: Result | None, kb: KnowledgeBase | None, plain: bool
) -> bytes:
    if not plain:
        return jsontext.dumps({**fields, "result": result}, kb)
    head = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
    body = result.model_dump_json().encode() if result is not None else b"null"
    return head[:-1] + b',"result":' + body + b"}"


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
        description=outcome.description,
        inputs=inputs_line(outcome.scenario) if outcome.scenario is not None else None,
        rejected=outcome.rejected,
        needs={u.rule: list(u.needs) for u in result.undetermined} if result else None,
        detail=detail_of(result) if result else None,
    )


def detail_of(result: Result) -> dict[str, Any]:
    """What a person reading a report expands a case's row to: every statement with its caveats
    (and the source's words behind each) and its quote, every undetermined rule with what would
    decide it, what the pack does not cover and what it did not recognise."""
    return {
        "statements": [
            {
                "rule": s.rule,
                "text": s.text,
                "caveats": [(c.code, c.label, c.support) for c in s.caveats],
                "quote": s.evidence.quote,
                "because": [f"{b.fact} {b.test}" for b in s.because],
            }
            for s in result.statements
        ],
        "undetermined": [
            {"rule": u.rule, "text": u.text, "needs": list(u.needs)} for u in result.undetermined
        ],
        "not_covered": [f"{n.input} ({n.label}): {n.reason}" for n in result.not_covered],
        "unrecognized": [f"{u.input}: {u.reason}" for u in result.unrecognized],
    }


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
    plain: bool = False,
) -> Any:
    outcomes = [
        run_case(kb, e, background, draft, plain=plain) for item in chunk for e in entries_of(item)
    ]
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
        parts += (before, json_line(outcome, kb, plain), after)
    text = b"".join(parts)
    if (slots := spool()) is not None:  # in a worker
        return Chunk(len(outcomes), records, tally, spool=(slots.write(text), len(text)))
    return Chunk(len(outcomes), records, tally, text=text)


# -- parent side ---------------------------------------------------------------------------------


def default_workers() -> int:
    """The cores this process may run on (at most MAX_WORKERS)."""
    if hasattr(os, "sched_getaffinity"):
        return min(MAX_WORKERS, max(1, len(os.sched_getaffinity(0))))
    return min(MAX_WORKERS, os.cpu_count() or 1)


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
    plain: bool = False,
) -> Iterator[Any]:
    """As `run_parallel`, a chunk at a time: a list of outcomes, or a `Chunk` with its counts (a
    report writes a chunk in one go). Output "lines" adds every case's JSON record, between the
    two parts of `frame`, as the chunk's text or spool. With `detail`, a chunk has the records of
    the first `detail` cases of the input and after them only those of cases that failed or were
    in error (a report need not have the rest made and sent). With `plain`, every case takes the
    plain path of the evaluation and of its JSON (see engine.pipeline.run): slower, the same
    output."""
    sent = 0

    def wanted(cases: int) -> bool:
        nonlocal sent
        sent += cases
        return detail is None or sent - cases < detail

    if workers <= 1 or not hasattr(os, "fork"):  # (no fork, as on Windows: one process)
        with _collector_tuned():
            for chunk, cases in _chunks(items, chunk_size):
                yield _evaluate(
                    kb,
                    include_background,
                    include_draft,
                    chunk,
                    output,
                    wanted(cases),
                    frame,
                    plain,
                )
        return
    workers = min(workers, MAX_WORKERS)  # and never more than there are chunks (see Crew)

    def serve(task: tuple[Any, ...]) -> Any:  # in a worker, forked with the pack compiled
        return _evaluate(kb, include_background, include_draft, *task, plain)

    with _collector_tuned():  # (the workers, forked inside, keep its settings for their life)
        crew = Crew(serve, slots=WINDOW + 1)
        try:
            # Chunk i goes to worker i % n and its results are read back in the same order, so
            # the output keeps the input's order with no reordering buffer, all in this thread.
            pending: deque[int] = deque()
            for number, (chunk, cases) in enumerate(_chunks(items, chunk_size)):
                crew.send(number % workers, _pickled((chunk, output, wanted(cases), frame)))
                pending.append(number % workers)
                while len(pending) >= workers * WINDOW:
                    yield crew.receive(pending.popleft())
            while pending:
                yield crew.receive(pending.popleft())
            crew.close()
        except BaseException:
            crew.kill()
            raise


def _pickled(task: tuple[Any, ...]) -> bytes:
    """A task as bytes for a worker. An input that cannot be handed over becomes its case's error,
    instead of stopping the batch: one that cannot be pickled (nested too deeply, not plain data,
    or whatever else its pickling raises), or an object of the Python API's that pickles but
    cannot be unpickled (a worker could not read its chunk). Cases read by `read_cases` are
    plain data and are not unpickled here."""
    chunk, *rest = task
    try:
        data = pickle.dumps(task, pickle.HIGHEST_PROTOCOL)
        if not all(isinstance(item, (CaseEntry, Lines)) for item in chunk):
            pickle.loads(data)
        return data
    except Exception:
        return pickle.dumps(([_shippable(item) for item in chunk], *rest), pickle.HIGHEST_PROTOCOL)


def _shippable(item: Any) -> Any:
    try:
        data = pickle.dumps(item, pickle.HIGHEST_PROTOCOL)
        if not isinstance(item, (CaseEntry, Lines)):
            pickle.loads(data)
    except Exception as exc:
        path = item.path if isinstance(item, CaseEntry) else "<input>"
        index = item.index if isinstance(item, CaseEntry) else 0
        why = "nested too deeply" if isinstance(exc, RecursionError) else "not plain data"
        error = f"{path}: cannot be handed to a worker process ({why}: {type(exc).__name__})"
        return CaseEntry(path=path, index=index, error=error)
    return item


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
    spread over `workers` processes (default: the number of cores; at most MAX_WORKERS, and
    never more than there are chunks of CHUNK cases). The workers are forked as the first
    cases reach them, and end when the last outcome is read or the iterator is closed."""
    kb = knowledge_base if knowledge_base is not None else load_knowledge_base()
    yield from run_parallel(
        cases,
        kb=kb,
        workers=default_workers() if workers is None else workers,
        include_background=include_background,
        include_draft=include_draft,
        output="outcomes",
    )
