"""`caveat batch`: many cases, streamed through worker processes into one report."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from ..batch import JSON_LINES, default_workers, run_chunks
from ..cases import cases_in, read_cases
from ..reports import SUFFIXES, WRITERS, Summary, TableWriter
from .common import EXIT_INPUT, Abandon, load_pack, say, stderr, stdout


def _count_cases(paths: Sequence[str]) -> int | None:
    """How many cases the inputs hold, for the progress bar (None when reading stdin)."""
    if "-" in paths:
        return None
    return sum(cases_in(item) for item in read_cases(list(paths), parse_json_lines=False))


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} cases/s" if speed else "", style="cyan")


@contextlib.contextmanager
def _progress(enabled: bool, total: int | None) -> Iterator[Callable[[int], None]]:
    if not enabled:
        yield lambda n: None
        return
    progress = Progress(
        TextColumn("[bold]evaluating"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=stderr(),
        transient=True,
    )
    with progress:
        task = progress.add_task("cases", total=total)
        yield lambda n: progress.advance(task, n)


def _format_for(args: argparse.Namespace) -> str:
    if args.format:
        return args.format
    if args.out:
        return SUFFIXES.get(Path(args.out).suffix.lower(), "jsonl")
    return "table" if sys.stdout.isatty() else "jsonl"


def cmd_batch(args: argparse.Namespace) -> int:
    err = stderr()
    kb = load_pack(args.pack)
    fmt = _format_for(args)
    show_progress = not args.quiet and err.is_terminal
    workers = args.workers if args.workers is not None else default_workers()
    if workers < 1:
        say(err, "error", "--workers must be at least 1")
        return EXIT_INPUT
    if args.out and not Path(args.out).parent.is_dir():
        say(err, "error", f"cannot write {args.out}: no such directory")
        return EXIT_INPUT
    summary = Summary(kb)
    total = _count_cases(args.paths) if show_progress else None
    with atomic_output(args.out) as out:
        writer = WRITERS[fmt](out, kb)
        if fmt == "table" and args.out is None:
            writer = TableWriter(out, kb, console=stdout())
        chunks = run_chunks(
            read_cases(args.paths, parse_json_lines=False),
            kb=kb,
            workers=workers,
            include_background=args.background,
            include_draft=args.include_draft,
            output="lines" if writer.frame else "records",
            detail=summary.max_rows,
            frame=writer.frame or JSON_LINES,
        )
        try:
            with _progress(show_progress, total) as advance:
                for chunk in chunks:
                    writer.add_chunk(chunk)
                    summary.add_chunk(chunk)
                    advance(chunk.size)
        except KeyboardInterrupt:
            summary.interrupted = True
            chunks.close()
            done = f"stopped the workers; {summary.counts_line()}"
            say(err, "interrupted", done, style="bold yellow")
            if args.out:
                err.print(Text(f"{args.out} was left as it was"))
            raise Abandon(130) from None
        writer.end(summary)
    if not args.quiet:
        style = "bold red" if summary.exit_code else "bold green"
        err.print(summary.counts_line(), style=style)
    return summary.exit_code


@contextlib.contextmanager
def atomic_output(path: str | None) -> Iterator[BinaryIO]:
    """Standard output, or a file that appears only once complete (written aside, then renamed):
    an interrupted run never leaves a half-written report over a good one."""
    if path is None:
        sys.stdout.flush()
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    with tempfile.NamedTemporaryFile(
        "wb",
        dir=target.parent,
        prefix=f".{target.name}.",
        suffix=".tmp",
        delete=False,
    ) as handle:
        temp = Path(handle.name)
        try:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(handle.fileno(), 0o666 & ~umask)  # as a plain open() would have made it
        except BaseException:
            handle.close()
            temp.unlink(missing_ok=True)
            raise
    os.replace(temp, target)
