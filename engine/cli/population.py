"""`caveat population EXPORT_DIR`: a FHIR Bulk Data export evaluated patient by patient."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table
from rich.text import Text

from ..knowledge_base import KnowledgeBase
from ..population.output import OutputError
from ..population.runner import run_population, summary_json
from ..population.tally import PopulationSummary
from ..workers import MAX_WORKERS
from .common import (
    EXIT_FAILED,
    EXIT_INPUT,
    EXIT_OK,
    Abandon,
    load_pack,
    say,
    signals_stop_the_command,
    stderr,
    stopped_by,
)

SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".html": "html",
    ".htm": "html",
}


def cmd_population(args: argparse.Namespace) -> int:
    err = stderr()
    fmt = args.format or (SUFFIXES.get(Path(args.out).suffix.lower()) if args.out else None)
    fmt = fmt or "jsonl"
    if args.workers is not None and args.workers < 1:
        raise OutputError("--workers must be at least 1")
    if args.out and Path(args.out).is_dir():
        raise OutputError(f"--out {args.out}: a folder; give a file name, e.g. rows.jsonl")
    workers = args.workers
    if workers is not None and workers > MAX_WORKERS:
        if not args.quiet:
            say(
                err,
                "note",
                f"--workers {workers} is more than the most a run starts; running {MAX_WORKERS}",
                style="bold yellow",
            )
        workers = MAX_WORKERS
    kb = load_pack(args.pack)
    show = not args.quiet and err.is_terminal
    try:
        with signals_stop_the_command(), _progress(show) as progress:
            summary = _run(args, kb, fmt, workers, progress)
    except KeyboardInterrupt as stop:
        status, what = stopped_by(stop)
        kept = f"; {args.out} was left as it was" if args.out else ""
        say(
            err,
            what,
            f"stopped the workers and removed the partition files{kept}",
            style="bold yellow",
        )
        raise Abandon(status) from None
    if args.summary:
        Path(args.summary).write_bytes(summary_json(summary))
    if not args.quiet:
        _tell(err, summary, args.out)
    for failure in summary.failed_partitions:
        say(
            err,
            "failed",
            f"partition {failure.partition} ({failure.patients:,} patients) "
            f"failed twice: {failure.attempts[-1]}",
        )
    if summary.spill_lines_damaged:
        say(
            err,
            "failed",
            f"{summary.spill_lines_damaged:,} lines of the partition files could "
            "not be read back: the disk of --spill-dir changed them",
        )
    if summary.failed_partitions or summary.patient_errors or summary.spill_lines_damaged:
        return EXIT_FAILED
    if summary.reading.unreadable or summary.reading.unreadable_more:
        return EXIT_INPUT
    return EXIT_OK


def _run(
    args: argparse.Namespace,
    kb: KnowledgeBase,
    fmt: str,
    workers: int | None,
    progress: Callable[[str, int, int], None] | None,
) -> PopulationSummary:
    return run_population(
        args.export,
        kb=kb,
        out=args.out,
        fmt=fmt,  # type: ignore[arg-type]
        as_of=args.as_of,
        everyone=args.all,
        workers=workers,
        dask=args.dask,
        spill_dir=args.spill_dir,
        partitions=args.partitions,
        progress=progress,
    )


@contextlib.contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A bar per phase: reading (megabytes of the export on disk), evaluating (partitions)."""
    if not enabled:
        yield None
        return
    bar = Progress(
        TextColumn("[bold]{task.description:<10}"),
        BarColumn(),
        TextColumn("{task.fields[amount]}"),
        console=stderr(),
        transient=True,
    )
    tasks: dict[str, TaskID] = {}

    def advance(phase: str, done: int, total: int) -> None:
        if phase == "reading":
            amount = f"{done / 1e6:,.1f} / {total / 1e6:,.1f} MB"
        else:
            amount = f"{done:,} / {total:,} partitions"
        if phase not in tasks:
            tasks[phase] = bar.add_task(phase, total=total, amount=amount)
        bar.update(tasks[phase], completed=done, total=total, amount=amount)

    with bar:
        yield advance


def _tell(err: object, s: PopulationSummary, out: str | None) -> None:
    console = err  # a rich Console
    table = Table(title="population", show_header=False, box=None)
    r = s.reading
    for label, value in (
        ("as of", f"{s.as_of} ({s.as_of_from})"),
        ("ran on", f"{s.engine}, {s.partitions:,} partitions"),
        ("resources read", f"{r.resources_read:,} in {r.files:,} files; kept {r.resources_kept:,}"),
        ("lines not readable", f"{len(r.unreadable) + r.unreadable_more:,}"),
        (
            "patients",
            f"{s.patients:,}; on the subject drug {s.patients_on_subject_drug:,}; "
            f"evaluated {s.patients_evaluated:,}",
        ),
        ("to review (warning)", f"{s.patients_with_warning:,}"),
        ("cpu-seconds", ", ".join(f"{k} {v:,.2f}" for k, v in s.seconds.items())),
    ):
        table.add_row(label, value)
    console.print(table)  # type: ignore[attr-defined]
    for u in r.unreadable[:10]:
        console.print(Text(f"  {u.file}:{u.line}: {u.reason}"))  # type: ignore[attr-defined]
    if len(r.unreadable) > 10 or r.unreadable_more:
        more = len(r.unreadable) - 10 + r.unreadable_more
        console.print(Text(f"  and {more:,} more lines not readable"))  # type: ignore[attr-defined]
    if out:
        console.print(Text(f"wrote {out}"))  # type: ignore[attr-defined]
