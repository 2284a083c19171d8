"""Evaluating many cases: streamed, in input order, in parallel worker processes.

The parent process reads the input and writes the output; workers (forked from a parent that has
already compiled the pack, so each worker compiles nothing) evaluate chunks of cases and send back
each case's output line ready-made, so the parent stays light. At most a few chunks per worker are
in flight at once, which bounds memory whatever the size of the input.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .cases import CaseEntry, Outcome, run_case
from .knowledge_base import KnowledgeBase, load_knowledge_base

CHUNK = 64  # cases per task sent to a worker
WINDOW = 4  # chunks in flight per worker


@dataclass
class Record:
    """One evaluated case, as a worker sends it back: small and cheap to pickle."""

    case: str
    path: str
    line: int | None
    status: str
    problems: list[str]
    applied: list[tuple[str, str, tuple[str, ...]]]  # (rule, category, caveat codes)
    undetermined: list[str]
    json_line: str = field(repr=False)  # the complete JSON Lines record


def record_of(outcome: Outcome) -> Record:
    result = outcome.result
    applied = (
        [(s.rule, s.category, tuple(c.code for c in s.caveats)) for s in result.statements]
        if result
        else []
    )
    data = {
        "case": outcome.case,
        "path": outcome.path,
        "line": outcome.line,
        "status": outcome.status,
        "problems": outcome.problems,
        "result": result.model_dump(mode="json") if result else None,
    }
    return Record(
        case=outcome.case,
        path=outcome.path,
        line=outcome.line,
        status=outcome.status,
        problems=list(outcome.problems),
        applied=applied,
        undetermined=[u.rule for u in result.undetermined] if result else [],
        json_line=json.dumps(data, ensure_ascii=False),
    )


# -- worker side ---------------------------------------------------------------------------------

_worker: tuple[KnowledgeBase, bool] | None = None  # set once in each worker process


def _init_worker(kb: KnowledgeBase | None, pack_path: str | None, background: bool) -> None:
    """Runs once in each worker: the pack is inherited (fork) or loaded once (spawn)."""
    global _worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    _worker = (kb if kb is not None else load_knowledge_base(pack_path), background)


def _as_entry(item: Any) -> CaseEntry:
    return item if isinstance(item, CaseEntry) else CaseEntry(path="<input>", index=0, data=item)


def _evaluate(kb: KnowledgeBase, background: bool, chunk: list[Any], objects: bool) -> list[Any]:
    outcomes = [run_case(kb, _as_entry(item), background) for item in chunk]
    return outcomes if objects else [record_of(o) for o in outcomes]


def _in_worker(chunk: list[Any], objects: bool) -> list[Any]:
    assert _worker is not None, "the worker was not initialised"
    return _evaluate(*_worker, chunk, objects)


# -- parent side ---------------------------------------------------------------------------------


def default_workers() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def run_parallel(
    items: Iterable[Any],
    *,
    kb: KnowledgeBase,
    workers: int,
    include_background: bool = False,
    objects: bool = False,
    chunk_size: int = CHUNK,
) -> Iterator[Any]:
    """Records (or Outcomes, with `objects`) for the items, in input order."""
    if workers <= 1:
        for chunk in _chunks(items, chunk_size):
            yield from _evaluate(kb, include_background, chunk, objects)
        return
    methods = mp.get_all_start_methods()
    if "fork" in methods:
        context = mp.get_context("fork")
        initargs: tuple[Any, ...] = (kb, None, include_background)
    elif kb.root.is_dir():
        context = mp.get_context("spawn")
        initargs = (None, str(kb.root), include_background)
    else:  # an in-memory pack cannot be sent to a spawned process
        yield from run_parallel(
            items,
            kb=kb,
            workers=1,
            include_background=include_background,
            objects=objects,
            chunk_size=chunk_size,
        )
        return
    pool = context.Pool(workers, initializer=_init_worker, initargs=initargs)
    try:
        pending: deque[Any] = deque()
        for chunk in _chunks(items, chunk_size):
            pending.append(pool.apply_async(_in_worker, (chunk, objects)))
            while len(pending) >= workers * WINDOW:
                yield from pending.popleft().get()
        while pending:
            yield from pending.popleft().get()
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def evaluate_many(
    cases: Iterable[Mapping[str, Any] | CaseEntry],
    *,
    workers: int | None = None,
    knowledge_base: KnowledgeBase | None = None,
    include_background: bool = False,
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
        objects=True,
    )
