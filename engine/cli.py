"""The `caveat` command line (also `python -m engine`)."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fnmatch
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

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
from rich.table import Table
from rich.text import Text

from .authoring import (
    check_pack,
    coverage,
    default_cases,
    diff,
    library,
    release,
    scaffold,
)
from .batch import JSON_LINES, default_workers, run_chunks
from .cases import CASE_KEYS, cases_in, read_cases
from .errors import BatchError, PackError, ScenarioError
from .evaluate import run
from .explain import explain, render_explanation
from .knowledge_base import KnowledgeBase, load_knowledge_base
from .pack import MANIFEST, bundled_pack_path
from .render import render_result
from .reports import FORMATS, SUFFIXES, WRITERS, Summary, TableWriter, actual
from .scenario import read_document
from .suggestions import did_you_mean
from .yamlfile import YamlProblem

EXIT_OK, EXIT_FAILED, EXIT_INPUT = 0, 1, 2


def _stdout() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:
        # never break lines of text for a pipe or a file; tables get a fixed, generous width
        console = Console(highlight=False, width=110, soft_wrap=True)
    return console


def _stderr() -> Console:
    console = Console(stderr=True, highlight=False)
    if not console.is_terminal:
        console = Console(stderr=True, highlight=False, width=110, soft_wrap=True)
    return console


def _say(console: Console, label: str, message: str, style: str = "bold red") -> None:
    """'label: message', the message printed as plain text (never read as rich markup)."""
    line = Text(f"{label}: ", style=style)
    line.append(message)
    console.print(line)


def _pack_dir(path: str | None) -> Path:
    """--pack, else ./rules when the working directory holds a pack, else the bundled pack."""
    if path is not None:
        return Path(path)
    local = Path("rules")
    return local if (local / MANIFEST).is_file() else bundled_pack_path()


def _load_pack(path: str | None) -> KnowledgeBase:
    if path is None and _pack_dir(None) == bundled_pack_path():
        return load_knowledge_base()  # the cached default
    return load_knowledge_base(_pack_dir(path))


def _cases(paths: Sequence[str] | None, kb: KnowledgeBase) -> list[Path]:
    if paths:
        return [Path(p) for p in paths]
    found = default_cases(kb.root)
    if not found:
        raise _Usage("no case library found (fixtures/cases); name one")
    return found


class _Usage(Exception):
    """A command cannot run as asked: say why and exit 2."""


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
        if fmt == "table" and args.out is None:
            writer = TableWriter(out, kb, console=_stdout())
        chunks = run_chunks(
            read_cases(args.paths, parse_json_lines=False),
            kb=kb,
            workers=workers,
            include_background=args.background,
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


def cmd_check(args: argparse.Namespace) -> int:
    root = _pack_dir(args.pack)
    report = check_pack(root, args.cases)
    if args.format == "json":
        data = {
            "pack": str(root),
            "errors": len(report.errors),
            "warnings": len(report.warnings),
            "problems": [p.model_dump() for p in report.problems],
        }
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        for problem in report.problems:
            print(problem)
        print(f"{root}: {len(report.errors)} error(s), {len(report.warnings)} warning(s)")
    return EXIT_FAILED if report.errors else EXIT_OK


def _selected(args: argparse.Namespace, kb: KnowledgeBase) -> list[Any]:
    entries = []
    for entry, case in library(_cases(args.cases, kb)):
        if args.rule and (
            case is None
            or case.expect is None
            or args.rule
            not in {
                *case.expect.applies,
                *case.expect.not_applies,
                *case.expect.caveats,
                *case.expect.undetermined,
            }
        ):
            continue
        if args.case and not (fnmatch.fnmatch(entry.name, args.case) or args.case in entry.name):
            continue
        entries.append(entry)
    return entries


def cmd_test(args: argparse.Namespace) -> int:
    kb = _load_pack(args.pack)
    if args.rule and args.rule not in kb.rule_index:
        raise _Usage(f"no rule {args.rule!r}{did_you_mean(args.rule, kb.rule_index)}")
    entries = _selected(args, kb)
    if not entries:
        raise _Usage("no case matches")
    summary = Summary(kb)
    for chunk in run_chunks(entries, kb=kb, workers=1, output="records"):
        summary.add_chunk(chunk)
        for record in chunk.records:
            if record.status not in ("fail", "error") and not args.verbose:
                continue
            where = f"{record.path}:{record.line}" if record.line else record.path
            print(f"{record.status.upper():5} {record.case}  ({where})")
            for problem in record.problems:
                print(f"      {problem}")
            if record.status == "fail":
                print(f"      {actual([r for r, _, _ in record.applied], record.undetermined)}")
    print(summary.counts_line())
    return summary.exit_code


def cmd_coverage(args: argparse.Namespace) -> int:
    kb = _load_pack(args.pack)
    result = coverage(kb, _cases(args.cases, kb))
    if args.format == "json":
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
    else:
        out = _stdout()
        rules = Table(
            title=f"Rules: {result.rule_percent:.1f}% covered "
            "(a case where each applies and a near miss where it must not)",
            title_justify="left",
        )
        for column in ("rule", "applies in", "near misses", ""):
            rules.add_column(column)
        for row in result.rules:
            mark = "background" if row.background else "covered" if row.covered else "UNCOVERED"
            rules.add_row(row.rule, _few(row.applies), _few(row.near_misses), mark)
        rules.caption = "applies in / near misses: the number of cases, and the first of them"
        out.print(rules)
        source = Table(
            title=f"Source: {result.source_percent:.1f}% of sentences encoded or "
            "left out with a reason",
            title_justify="left",
        )
        for column in ("#", "sentence", "encoded by / left out because"):
            source.add_column(column)
        for s in result.sentences:
            why = (
                ", ".join(s.rules)
                if s.rules
                else (f"left out: {s.left_out}" if s.left_out else "NOT ENCODED")
            )
            source.add_row(str(s.number), Text(_short(s.text, 60)), Text(why))
        out.print(source)
    if args.fail_under is not None and min(result.rule_percent, result.source_percent) < (
        args.fail_under
    ):
        _say(
            _stderr(),
            "coverage",
            f"below {args.fail_under:g}% (rules "
            f"{result.rule_percent:.1f}%, source {result.source_percent:.1f}%)",
        )
        return EXIT_FAILED
    return EXIT_OK


def _few(names: list[str]) -> str:
    return f"{len(names)}: {names[0]}" if names else "0"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def cmd_explain(args: argparse.Namespace) -> int:
    kb = _load_pack(args.pack)
    if args.rule and args.rule not in kb.rule_index:
        raise _Usage(f"no rule {args.rule!r}{did_you_mean(args.rule, kb.rule_index)}")
    try:
        data = _read_scenario_document(args.file)
    except YamlProblem as exc:
        raise _Usage(str(exc)) from None
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k not in CASE_KEYS}
    try:
        explanation = explain(kb, data, args.rule, include_background=args.background)
    except ScenarioError as exc:
        _say(_stderr(), "error", f"invalid scenario in {args.file}:")
        for problem in exc.problems:
            _stderr().print(Text(f"  {problem}"))
        return EXIT_INPUT
    if args.format == "json":
        sys.stdout.write(explanation.model_dump_json(indent=2) + "\n")
    else:
        sys.stdout.write(render_explanation(kb, explanation))
    return EXIT_OK


def cmd_new(args: argparse.Namespace) -> int:
    kb = _load_pack(args.pack)
    cases_dir = Path(args.cases) if args.cases else (default_cases(kb.root) or [None])[0]
    if cases_dir is None:
        raise _Usage("no case library found (fixtures/cases); give --cases DIR")
    try:
        made = scaffold(
            kb,
            quote=args.quote,
            sentence=args.sentence,
            rule_id=args.id,
            source_id=args.source,
            cases_dir=Path(cases_dir),
        )
    except (ValueError, KeyError) as exc:
        raise _Usage(str(exc).strip("'")) from None
    print(f"created {made.rule_file} (sentence {made.sentence})")
    print(f"created {made.case_file} (a case where it applies and a near miss)")
    print(f"concepts in the sentence: {', '.join(made.concepts) or 'none found'}")
    if made.already:
        print(f"already encoded by: {', '.join(made.already)}")
    print("next: replace every TODO in both files, then run `caveat rules check`")
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    kb = _load_pack(args.pack)
    cases = _cases(args.cases, kb)
    try:
        result = diff(kb, args.base, cases)
    except ValueError as exc:
        raise _Usage(str(exc)) from None
    if args.format == "json":
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
    else:
        print(
            f"{kb.id} {result.base_version} ({args.base}) -> {result.version} (now), "
            f"{result.cases} cases"
        )
        for change in result.changed:
            print(f"changed: {change.case}  ({change.path})")
            for line in change.changes:
                print(f"    {line}")
        print(f"{len(result.changed)} changed, {result.unchanged} unchanged")
    return EXIT_FAILED if args.fail_on_change and result.changed else EXIT_OK


def cmd_release(args: argparse.Namespace) -> int:
    root = _pack_dir(args.pack)
    try:
        digest = release(root, args.version, args.change, dt.date.today().isoformat())
    except ValueError as exc:
        raise _Usage(str(exc)) from None
    print(f"{root / MANIFEST}: version {args.version}, content digest {digest}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="caveat",
        description="Evaluate patient scenarios against a drug-monograph knowledge pack "
        "(decision support for one document; not medical advice).",
    )
    parser.add_argument("--version", action="version", version="caveat 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    pack_help = "knowledge pack directory (default: ./rules if there is one, else the bundled pack)"

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
    ev.add_argument("--pack", metavar="DIR", help=pack_help)
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
    ba.add_argument("--pack", metavar="DIR", help=pack_help)
    ba.set_defaults(func=cmd_batch)

    cases_help = "case files or directories (default: fixtures/cases)"

    ex = sub.add_parser("explain", help="why each rule applies, does not apply or is undetermined")
    ex.add_argument("file", metavar="SCENARIO", help="scenario or case file; - for stdin")
    ex.add_argument("--rule", metavar="ID", help="explain this rule only")
    ex.add_argument("--background", action="store_true", help="also list background statements")
    ex.add_argument("--format", choices=("text", "json"), default="text")
    ex.add_argument("--pack", metavar="DIR", help=pack_help)
    ex.set_defaults(func=cmd_explain)

    rules = sub.add_parser("rules", help="author rules: check, test, coverage, new, diff, release")
    verbs = rules.add_subparsers(dest="verb", metavar="VERB")
    rules.set_defaults(func=lambda a: (rules.print_help(), EXIT_INPUT)[1])

    ch = verbs.add_parser("check", help="every problem of a pack, as file:line:column: message")
    ch.add_argument("pack", nargs="?", metavar="PACK", help=pack_help)
    ch.add_argument("--cases", nargs="*", metavar="PATH", help=cases_help)
    ch.add_argument("--format", choices=("text", "json"), default="text")
    ch.set_defaults(func=cmd_check)

    te = verbs.add_parser("test", help="run the cases' expectations")
    te.add_argument("cases", nargs="*", metavar="CASES", help=cases_help)
    te.add_argument("--rule", metavar="ID", help="only cases whose expectations name this rule")
    te.add_argument("--case", metavar="NAME", help="only cases whose name matches (glob or part)")
    te.add_argument("--verbose", "-v", action="store_true", help="list passing cases too")
    te.add_argument("--pack", metavar="DIR", help=pack_help)
    te.set_defaults(func=cmd_test)

    co = verbs.add_parser("coverage", help="rules with cases on both sides; sentences encoded")
    co.add_argument("--cases", nargs="*", metavar="PATH", help=cases_help)
    co.add_argument(
        "--fail-under", type=float, metavar="PERCENT", help="exit 1 when either table is below this"
    )
    co.add_argument("--format", choices=("text", "json"), default="text")
    co.add_argument("--pack", metavar="DIR", help=pack_help)
    co.set_defaults(func=cmd_coverage)

    ne = verbs.add_parser("new", help="scaffold a rule (and two cases) from a source sentence")
    which = ne.add_mutually_exclusive_group(required=True)
    which.add_argument("--quote", metavar="TEXT", help="a span of the source")
    which.add_argument("--sentence", type=int, metavar="N", help="sentence N of the source")
    ne.add_argument("--id", metavar="ID", help="the rule id (default: from the sentence)")
    ne.add_argument("--source", metavar="ID", help="source id (default: the pack's first)")
    ne.add_argument("--cases", metavar="DIR", help="where to write the cases")
    ne.add_argument("--pack", metavar="DIR", help=pack_help)
    ne.set_defaults(func=cmd_new)

    di = verbs.add_parser("diff", help="what a change does to every case")
    di.add_argument("base", metavar="BASE", help="the pack before: a directory or a git revision")
    di.add_argument("--cases", nargs="*", metavar="PATH", help=cases_help)
    di.add_argument("--fail-on-change", action="store_true", help="exit 1 when a case changed")
    di.add_argument("--format", choices=("text", "json"), default="text")
    di.add_argument("--pack", metavar="DIR", help=pack_help)
    di.set_defaults(func=cmd_diff)

    re_ = verbs.add_parser("release", help="set a new version and record it in the changelog")
    re_.add_argument("version", metavar="VERSION", help="the new version, e.g. 1.1.0")
    re_.add_argument(
        "--change",
        action="append",
        default=[],
        metavar="TEXT",
        required=True,
        help="what changed (repeat for several)",
    )
    re_.add_argument("--pack", metavar="DIR", help=pack_help)
    re_.set_defaults(func=cmd_release)
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
    except _Usage as exc:
        _say(_stderr(), "error", str(exc))
        return EXIT_INPUT
    except KeyboardInterrupt:
        _stderr().print("interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except BatchError as exc:
        _say(_stderr(), "error", str(exc))
        return EXIT_INPUT
    except OSError as exc:  # a disk full, a file that cannot be written: say so, no traceback
        where = f"{exc.filename}: " if exc.filename else ""
        _say(_stderr(), "error", f"{where}{exc.strerror or exc}")
        return EXIT_INPUT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
