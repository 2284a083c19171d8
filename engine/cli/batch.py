"""`caveat batch`: many cases, streamed through worker processes into one report."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import stat
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from ..batch import JSON_LINES, default_workers, run_chunks
from ..casefiles import cases_in, read_cases
from ..fhir.cases import enable as enable_fhir
from ..reading import Limits
from ..reports import SUFFIXES, WRITERS, Summary, TableWriter
from ..workers import MAX_WORKERS, deferred_signals
from .common import (
    EXIT_INPUT,
    Abandon,
    Usage,
    load_pack,
    say,
    signals_stop_the_command,
    stderr,
    stdout,
    stopped_by,
)

fcntl: Any
try:
    import fcntl
except ImportError:  # (Windows: no locks, so no telling a stale temporary file from a live one)
    fcntl = None


def _count_cases(paths: Sequence[str], limits: Limits) -> int | None:
    """How many cases the inputs hold, for the progress bar: None when an input can be read only
    once (standard input, a FIFO such as a shell's `<(...)`), which counting would consume."""
    if any(path == "-" or _read_once(path) for path in paths):
        return None
    items = read_cases(list(paths), parse_json_lines=False, limits=limits)
    return sum(cases_in(item) for item in items)


def _read_once(path: str) -> bool:
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False  # reported as the case's error when the batch reads it
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} cases/s" if speed else "", style="cyan")


class _Shown:
    """What the terminal shows while a batch runs: the phase it is in ("loading pack", "counting
    cases", "starting 2 workers") until the first cases are back, then a bar with live counts of
    passed, failed and errors, and a rate. Nothing when it is not a terminal or --quiet."""

    def __init__(self, enabled: bool) -> None:
        self.bar: Progress | None = None
        self.task: Any = None
        if enabled:
            self.bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                _CountColumn(),
                TextColumn("{task.fields[counts]}"),
                _RateColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=stderr(),
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task("starting", total=None, counts="")

    def phase(self, what: str) -> None:
        if self.bar is not None:
            self.bar.update(self.task, description=what)

    def begin(self, total: int | None) -> None:
        if self.bar is not None:
            self.bar.update(self.task, total=total, completed=0, description="evaluating")

    def advance(self, done: int, summary: Summary) -> None:
        if self.bar is not None:
            st = summary.status
            counts = f"passed {st['pass']:,} · failed {st['fail']:,} · errors {st['error']:,}"
            if st["evaluated"]:
                counts += f" · without expectations {st['evaluated']:,}"
            self.bar.update(self.task, advance=done, counts=counts)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


class _CountColumn(ProgressColumn):
    """cases done of the total, with thousands separators."""

    def render(self, task: Task) -> Text:
        if task.description != "evaluating":  # (a phase before it: nothing counted yet)
            return Text("")
        total = f"{int(task.total):,}" if task.total is not None else "?"
        return Text(f"{int(task.completed):,}/{total}")


def _format_for(args: argparse.Namespace) -> str:
    if args.format:
        if args.cases and args.format != "table":
            raise Usage(f"--cases lists the cases in the table report, not in {args.format}")
        return args.format
    if args.cases:
        return "table"  # (--cases asks for the table, wherever it goes)
    if args.out:
        return SUFFIXES.get(Path(args.out).suffix.lower(), "jsonl")
    return "table" if sys.stdout.isatty() else "jsonl"


def cmd_batch(args: argparse.Namespace) -> int:
    err = stderr()
    shown = _Shown(not args.quiet and err.is_terminal)
    try:
        return _batch(args, err, shown)
    finally:
        shown.stop()


def _batch(args: argparse.Namespace, err: Any, shown: _Shown) -> int:
    shown.phase("loading pack")
    kb = load_pack(args.pack)
    enable_fhir(args.as_of)  # a case file holding a FHIR patient Bundle is read as its patient
    fmt = _format_for(args)
    workers = args.workers if args.workers is not None else default_workers()
    if workers < 1:
        say(err, "error", "--workers must be at least 1")
        return EXIT_INPUT
    if workers > MAX_WORKERS:
        if not args.quiet:
            note = f"--workers {workers} is more than the most a batch runs; running {MAX_WORKERS}"
            say(err, "note", note, style="bold yellow")
        workers = MAX_WORKERS
    target = output_target(args.out) if args.out else None  # refused now, not after the work
    summary = Summary(kb)
    limits = Limits(case_file=args.max_file_size, json_line=args.max_line_size)
    with signals_stop_the_command(), atomic_output(args.out) as out:
        total = None
        if shown.bar is not None:
            shown.phase("counting cases")
            total = _count_cases(args.paths, limits)
        writer = WRITERS[fmt](out, kb)
        if fmt == "table" and args.out is None:
            writer = TableWriter(out, kb, console=stdout())
        writer.all_rules = args.all_rules  # type: ignore[attr-defined]
        writer.list_cases = args.cases  # type: ignore[attr-defined]
        chunks = run_chunks(
            read_cases(args.paths, parse_json_lines=False, limits=limits),
            kb=kb,
            workers=workers,
            include_background=args.background,
            include_draft=args.include_draft,
            output="lines" if writer.frame else "records",
            detail=summary.max_rows,
            frame=writer.frame or JSON_LINES,
            plain=args.plain,
        )
        try:
            with contextlib.closing(chunks):  # however the loop ends, the workers are stopped
                shown.phase(f"starting {workers:,} worker{'s' if workers > 1 else ''}")
                first = True
                for chunk in chunks:
                    if first:
                        shown.begin(total)
                        first = False
                    with deferred_signals():  # a chunk is written and counted whole, or not at all
                        writer.add_chunk(chunk)
                        summary.add_chunk(chunk)
                    shown.advance(chunk.size, summary)
                shown.stop()
                writer.end(summary)
        except KeyboardInterrupt as stop:
            shown.stop()
            summary.interrupted = True
            status, label = stopped_by(stop)
            done = f"stopped the workers; {summary.counts_line()}"
            say(err, label, done, style="bold yellow")
            if target is not None and not target.direct:
                writer.end(summary)  # the cases done so far, kept aside
                raise KeepPartial(status) from None
            raise Abandon(status) from None
    if not args.quiet:
        style = "bold red" if summary.exit_code else "bold green"
        err.print(summary.counts_line(), style=style)
    return summary.exit_code


class KeepPartial(Exception):
    """Keep what was written as --out's `.partial` report, then leave with this exit status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def partial_path(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


class Output(NamedTuple):
    """Where --out writes: `path` itself, in place (`direct`), or a temporary file beside `path`
    that is renamed over it once complete."""

    path: Path
    direct: bool


def output_target(path: str) -> Output:
    """Where --out writes, checked before any work is done (raises Usage):

    - an existing directory is refused;
    - an existing file that is not a regular file (a terminal, a pipe or FIFO, a character
      device such as /dev/null), or that is standard output (/dev/stdout, whatever it is), is
      written directly, in place: never replaced, and a report cut short stays cut short there;
    - anything else (a regular file, or a new name in an existing directory) is written to a
      temporary file beside it, renamed over it once complete. A symbolic link is followed: the
      file it points to is replaced, and the link kept."""
    try:
        info: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise Usage(f"cannot write {path}: {exc.strerror}") from None
    if info is not None:
        if stat.S_ISDIR(info.st_mode):
            raise Usage(f"cannot write {path}: it is a directory")
        if not stat.S_ISREG(info.st_mode) or _is_stdout(info):
            return Output(Path(path), direct=True)
    real = Path(os.path.realpath(path))
    if not real.parent.is_dir():
        raise Usage(f"cannot write {path}: no such directory")
    return Output(real, direct=False)


@contextlib.contextmanager
def atomic_output(path: str | None) -> Iterator[BinaryIO]:
    """Standard output, or --out as `output_target` says. A regular file appears only once
    complete (written aside, then renamed), so that a run cut short leaves neither half a report
    over a good one nor a temporary file; but a run killed outright (SIGKILL) cannot remove its
    temporary file: the next run to the same --out does. An error writing names --out."""
    if path is None:
        sys.stdout.flush()
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = output_target(path)
    if target.direct:
        with _naming(path):
            if _is_stdout(os.stat(path)):  # (its own descriptor: a file opened anew is truncated)
                sys.stdout.flush()
                yield sys.stdout.buffer
                sys.stdout.buffer.flush()
            else:
                with open(path, "wb") as direct:
                    yield direct
        return
    _remove_stale_temps(target.path)
    try:
        fd, name = tempfile.mkstemp(
            dir=target.path.parent, prefix=f".{target.path.name}.", suffix=".tmp"
        )
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, path) from None
    temp = Path(name)
    handle = os.fdopen(fd, "wb")
    if fcntl is not None:
        with contextlib.suppress(OSError):  # held until the file is renamed or removed
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def settle(where: Path) -> None:
        handle.flush()
        os.fsync(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(fd, 0o666 & ~umask)  # as a plain open() would have made it
        os.replace(temp, where)
        handle.close()

    try:
        with _naming(path):
            try:
                yield handle
            except KeepPartial as keep:  # interrupted: the report so far, beside --out
                with deferred_signals():
                    settle(partial_path(target.path))
                err = stderr()
                err.print(
                    Text(
                        f"the report of the cases done is in {partial_path(target.path)}; "
                        f"{path} was left as it was"
                    )
                )
                raise Abandon(keep.status) from None
            settle(target.path)
    except BaseException:
        with deferred_signals():
            temp.unlink(missing_ok=True)  # first: closing can fail again (a full disk)
            with contextlib.suppress(OSError):
                handle.close()
        raise


@contextlib.contextmanager
def _naming(path: str) -> Iterator[None]:
    """An OSError that names no file names --out (a write failed: disk full, file too large)."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None and not isinstance(exc, BrokenPipeError):
            exc.filename = path
        raise


def _is_stdout(info: os.stat_result) -> bool:
    try:
        return os.path.samestat(info, os.fstat(sys.stdout.fileno()))
    except (OSError, ValueError, AttributeError):  # (no standard output, or not a real one)
        return False


_TEMP_NAME = re.compile(r"[a-z0-9_]{8}")  # the random part of a tempfile name


def _remove_stale_temps(target: Path) -> None:
    """Remove the temporary files that runs killed outright (SIGKILL, a crash, a power cut) left
    beside `target`. A writer holds a lock on its temporary file until it has renamed or removed
    it, and the kernel drops the lock when the writer dies: a temporary file nobody holds is
    stale. (One made in the instant before its writer locks it could be taken for stale by a
    run starting in that very instant: then the writer fails when it renames it.)"""
    if fcntl is None:
        return
    prefix, suffix = f".{target.name}.", ".tmp"
    try:
        names = os.listdir(target.parent)
    except OSError:
        return
    for name in names:
        random = name[len(prefix) : -len(suffix)]
        if not (name.startswith(prefix) and name.endswith(suffix) and _TEMP_NAME.fullmatch(random)):
            continue
        stale = target.parent / name
        try:
            fd = os.open(stale, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.path.samestat(os.fstat(fd), os.lstat(stale)):
                os.unlink(stale)
        except OSError:
            pass
        finally:
            os.close(fd)
