"""The `caveat` command line (also `python -m engine`)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
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

from .batch import default_workers, run_parallel
from .cases import CASE_KEYS, read_cases
from .errors import PackError, ScenarioError
from .evaluate import run
from .knowledge_base import KnowledgeBase, load_knowledge_base
from .render import render_result
from .reports import FORMATS, SUFFIXES, WRITERS, Summary, TableWriter
from .scenario import read_document
from .yamlfile import YamlProblem

EXIT_OK, EXIT_FAILED, EXIT_INPUT = 0, 1, 2


def _stdout() -> Console:
    console = Console(highlight=False)
    # wrap for a person at a terminal; never break lines for a pipe or a file
    console.soft_wrap = not console.is_terminal
    return console


def _stderr() -> Console:
    return Console(stderr=True, highlight=False)


def _say(console: Console, label: str, message: str, style: str = "bold red") -> None:
    """'label: message', the message printed as plain text (never read as rich markup)."""
    line = Text(f"{label}: ", style=style)
    line.append(message)
    console.print(line)


def _load_pack(path: str | None) -> KnowledgeBase:
    return load_knowledge_base(path)


def _read_scenario_document(name: str) -> Any:
    if name == "-":
        return read_document("<stdin>", sys.stdin.read())  # JSON is YAML too
    return read_document(name)


def cmd_evaluate(args: argparse.Namespace) -> int:
    err = _stderr()
    kb = _load_pack(args.pack)
    try:
        data = _read_scenario_document(args.file)
    except YamlProblem as exc:
        _say(err, "error", str(exc))
        return EXIT_INPUT
    if isinstance(data, list):
        message = f"{args.file} holds {len(data)} cases; evaluate takes one scenario"
        _say(err, "error", message + " (run `caveat batch` for a case list)")
        return EXIT_INPUT
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k not in CASE_KEYS}
    try:
        result = run(kb, data, include_background=args.background, source=args.file)
    except ScenarioError as exc:
        _say(err, "error", f"invalid scenario in {args.file}:")
        for problem in exc.problems:
            err.print(f"  {problem}", markup=False)
        return EXIT_INPUT
    if args.json:
        sys.stdout.write(json.dumps(result.model_dump(mode="json"), indent=2, ensure_ascii=False))
        sys.stdout.write("\n")
    else:
        render_result(result, kb, _stdout())
    return EXIT_OK


def _count_cases(paths: Sequence[str]) -> int | None:
    """How many cases the inputs hold, for the progress bar (None when reading stdin)."""
    if "-" in paths:
        return None
    total = 0
    for entry in read_cases(list(paths), parse_json_lines=False):
        total += 1
        del entry
    return total


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
        console=_stderr(),
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
    err = _stderr()
    kb = _load_pack(args.pack)
    fmt = _format_for(args)
    show_progress = not args.quiet and err.is_terminal
    workers = args.workers if args.workers is not None else default_workers()
    if workers < 1:
        _say(err, "error", "--workers must be at least 1")
        return EXIT_INPUT
    if args.out and not Path(args.out).parent.is_dir():
        _say(err, "error", f"cannot write {args.out}: no such directory")
        return EXIT_INPUT
    summary = Summary(kb)
    total = _count_cases(args.paths) if show_progress else None
    with atomic_output(args.out) as out:
        writer = WRITERS[fmt](out, kb)
        if fmt == "table" and out is sys.stdout:
            writer = TableWriter(out, kb, console=_stdout())
        records = run_parallel(
            read_cases(args.paths, parse_json_lines=False),
            kb=kb,
            workers=workers,
            include_background=args.background,
        )
        try:
            with _progress(show_progress, total) as advance:
                for record in records:
                    writer.add(record)
                    summary.add(record)
                    advance(1)
        except KeyboardInterrupt:
            summary.interrupted = True
            records.close()
            done = f"stopped the workers; {summary.counts_line()}"
            _say(err, "interrupted", done, style="bold yellow")
            if args.out:
                err.print(Text(f"{args.out} was left as it was"))
            raise _Abandon(130) from None
        writer.end(summary)
    if not args.quiet:
        style = "bold red" if summary.exit_code else "bold green"
        err.print(summary.counts_line(), style=style)
    return summary.exit_code


class _Abandon(Exception):
    """Leave the command with this exit status, discarding the output file."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


@contextlib.contextmanager
def atomic_output(path: str | None) -> Iterator[TextIO]:
    """Standard output, or a file that appears only once complete (written aside, then renamed):
    an interrupted run never leaves a half-written report over a good one."""
    if path is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    target = Path(path)
    with tempfile.NamedTemporaryFile(
        "w",
        encoding="utf-8",
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="caveat",
        description="Evaluate patient scenarios against a drug-monograph knowledge pack "
        "(decision support for one document; not medical advice).",
    )
    parser.add_argument("--version", action="version", version="caveat 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    ev = sub.add_parser("evaluate", help="evaluate one scenario file and show what applies")
    ev.add_argument(
        "file", metavar="FILE", help="scenario (or case) file, YAML or JSON; - for stdin"
    )
    ev.add_argument("--json", action="store_true", help="print the result as JSON")
    ev.add_argument(
        "--background",
        action="store_true",
        help="also show statements that hold whatever the scenario (class, pharmacology)",
    )
    ev.add_argument("--pack", metavar="DIR", help="knowledge pack directory (default: bundled)")
    ev.set_defaults(func=cmd_evaluate)

    ba = sub.add_parser(
        "batch",
        help="evaluate case files and directories, check their expectations, and report",
        description="Evaluate cases (YAML/JSON files, YAML lists, JSON Lines; directories are "
        "searched recursively; - reads JSON Lines from stdin) and check their expectations. "
        "Exit status: 0 all met, 1 an expectation failed, 2 some input was unreadable or invalid.",
    )
    ba.add_argument("paths", nargs="+", metavar="PATH", help="case file or directory, or -")
    ba.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help=f"worker processes (default: the number of cores, {default_workers()})",
    )
    ba.add_argument(
        "--format",
        choices=FORMATS,
        help="report format (default: from --out's suffix, else table on a terminal "
        "and jsonl otherwise)",
    )
    ba.add_argument("--out", metavar="FILE", help="write the report here (atomically)")
    ba.add_argument("--quiet", action="store_true", help="no progress bar and no summary line")
    ba.add_argument(
        "--background",
        action="store_true",
        help="include the statements that hold whatever the scenario",
    )
    ba.add_argument("--pack", metavar="DIR", help="knowledge pack directory (default: bundled)")
    ba.set_defaults(func=cmd_batch)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_INPUT
    try:
        return int(args.func(args))
    except PackError as exc:
        err = _stderr()
        _say(err, "error", "the knowledge pack cannot be loaded:")
        for p in exc.problems:
            if p.severity == "error":
                err.print(f"  {p}", markup=False)
        return EXIT_INPUT
    except _Abandon as stop:
        return stop.status
    except KeyboardInterrupt:
        _stderr().print("interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
