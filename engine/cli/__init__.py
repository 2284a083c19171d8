"""The `caveat` command line (also `python -m engine`): one module per group of verbs."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Sequence
from importlib import import_module
from typing import Any

from ..batch import CHUNK, default_workers
from ..cleantext import printable
from ..errors import BatchError, CaveatError, PackError
from ..pack import bundled_pack_path, read_pack
from ..reading import DEFAULT_LIMITS, FILE_OPTION, LINE_OPTION, size_text
from ..reports import FORMATS
from ..workers import MAX_WORKERS
from .common import (
    EXIT_INPUT,
    EXIT_OK,
    Abandon,
    Usage,
    closed_stream,
    say,
    settle_streams,
    size,
    stderr,
)

__all__ = ["atomic_output", "build_parser", "main"]


def _command(module: str, name: str) -> Any:
    """A verb's function, imported when the verb runs: `caveat evaluate` need not import what
    `caveat rules release` or `caveat serve` use."""

    def run(args: argparse.Namespace) -> int:
        return getattr(import_module(module, __name__), name)(args)  # type: ignore[no-any-return]

    run.__name__ = name
    return run


def __getattr__(name: str) -> Any:
    if name == "atomic_output":  # (kept importable from here)
        from .batch import atomic_output

        return atomic_output
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


VERSION = "0.1.0"


class _Version(argparse.Action):
    """`caveat --version`: the program's version and the bundled pack's id, version and digest
    (the digest its results report and its changelog records)."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        lines = [f"caveat {VERSION}"]
        contents = read_pack(bundled_pack_path())
        if contents.manifest is not None:
            m = contents.manifest
            lines.append(f"bundled pack {m.id} {m.version} (digest {contents.digest()})")
        else:
            lines.append(f"bundled pack: cannot be read ({bundled_pack_path()})")
        print("\n".join(lines))
        parser.exit(EXIT_OK)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-25") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="caveat",
        description="Evaluate patient scenarios against a drug-monograph knowledge pack "
        "(decision support for one document; not medical advice).",
    )
    parser.add_argument(
        "--version",
        action=_Version,
        nargs=0,
        help="show the version of caveat and of the bundled knowledge pack, and exit",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    pack_help = "knowledge pack directory (default: ./rules if there is one, else the bundled pack)"
    edit_help = "knowledge pack directory to edit (default: ./rules)"
    draft_help = "also evaluate draft rules (left out by default; retired rules never run)"
    scenario_limit: dict[str, Any] = dict(
        dest="max_file_size",
        type=size,
        default=DEFAULT_LIMITS.scenario_file,
        metavar="SIZE",
        help="refuse a scenario file larger than this, e.g. 4M (default: "
        f"{size_text(DEFAULT_LIMITS.scenario_file)})",
    )
    as_of_help = (
        "for FHIR data: compute ages and durations as of this date, YYYY-MM-DD (default: today)"
    )
    today_help = (
        "judge reviews overdue as of this date, YYYY-MM-DD (default: $CAVEAT_TODAY, else today)"
    )

    ev = sub.add_parser("evaluate", help="evaluate one scenario file and show what applies")
    ev.add_argument(
        "file", metavar="FILE", help="scenario (or case) file, YAML or JSON; - for stdin"
    )
    ev.add_argument("--json", action="store_true", help="print the result as JSON")
    ev.add_argument(
        "--fhir",
        action="store_true",
        help="FILE is a FHIR R4 patient Bundle (JSON): map it onto a scenario first, and say "
        "what could not be read (with --json: {result, fhir})",
    )
    ev.add_argument("--as-of", type=_date, metavar="DATE", help=as_of_help)
    ev.add_argument(
        "--background",
        action="store_true",
        help="also show statements that hold whatever the scenario (class, pharmacology)",
    )
    ev.add_argument("--include-draft", action="store_true", help=draft_help)
    ev.add_argument(
        FILE_OPTION,
        **{
            **scenario_limit,
            "default": None,
            "help": "refuse a scenario file larger than this, e.g. 4M (default: "
            f"{size_text(DEFAULT_LIMITS.scenario_file)}; with --fhir, "
            f"{size_text(DEFAULT_LIMITS.case_file)})",
        },
    )
    ev.add_argument("--pack", metavar="DIR", help=pack_help)
    ev.set_defaults(func=_command(".scenario", "cmd_evaluate"))

    ba = sub.add_parser(
        "batch",
        help="evaluate case files and directories, check their expectations, and report",
        description="Evaluate cases (YAML/JSON files, YAML lists, JSON Lines; directories are "
        "searched recursively; - reads JSON Lines from stdin) and check their expectations. "
        "Exit status: 0 all met (or the reader of standard output went away), 1 an expectation "
        "failed, 2 some input was unreadable or invalid, or the batch could not go on (a worker "
        "died, the report could not be written); 130, 143 or 129 when stopped by SIGINT "
        "(Ctrl-C), SIGTERM or SIGHUP.",
    )
    ba.add_argument("paths", nargs="+", metavar="PATH", help="case file or directory, or -")
    ba.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help=f"worker processes (default: the number of cores, {default_workers()}); never "
        f"more than the input has chunks of {CHUNK} cases, and at most {MAX_WORKERS}: more is "
        f"taken as {MAX_WORKERS}, with a note",
    )
    ba.add_argument(
        "--format",
        choices=FORMATS,
        help="report format (default: from --out's suffix, else table on a terminal "
        "and jsonl otherwise)",
    )
    ba.add_argument(
        "--out",
        metavar="FILE",
        help="write the report here: a file appears only once complete (written aside, then "
        "renamed; a symlink's target is replaced, the link kept); a device, FIFO or /dev/stdout "
        "is written directly; a directory is refused. Stopped by Ctrl-C (or SIGTERM, SIGHUP), "
        "the report of the cases done so far goes to FILE.partial, and FILE is left as it was",
    )
    ba.add_argument("--quiet", action="store_true", help="no progress bar and no summary line")
    ba.add_argument(
        "--cases",
        action="store_true",
        help="table report: also list each case, a line each, with its statements and caveats",
    )
    ba.add_argument(
        "--all-rules",
        action="store_true",
        help="html report: a column for every rule of the pack, not only those the batch gave",
    )
    ba.add_argument(
        "--background",
        action="store_true",
        help="include the statements that hold whatever the scenario",
    )
    ba.add_argument("--include-draft", action="store_true", help=draft_help)
    ba.add_argument(
        FILE_OPTION,
        type=size,
        default=DEFAULT_LIMITS.case_file,
        metavar="SIZE",
        help="refuse a YAML or JSON case file larger than this, e.g. 64M (default: "
        f"{size_text(DEFAULT_LIMITS.case_file)})",
    )
    ba.add_argument(
        LINE_OPTION,
        type=size,
        default=DEFAULT_LIMITS.json_line,
        metavar="SIZE",
        help="refuse a JSON Lines record longer than this, e.g. 4M (default: "
        f"{size_text(DEFAULT_LIMITS.json_line)})",
    )
    ba.add_argument("--as-of", type=_date, metavar="DATE", help=as_of_help)
    ba.add_argument("--pack", metavar="DIR", help=pack_help)
    ba.add_argument(
        "--plain",
        action="store_true",
        help="evaluate without the fast path (pydantic validates every model, nothing is "
        "remembered between cases): slower, the same output; for checking the fast path",
    )
    ba.set_defaults(func=_command(".batch", "cmd_batch"))

    po = sub.add_parser(
        "population",
        help="evaluate a FHIR Bulk Data export, patient by patient",
        description="Read a FHIR Bulk Data export (a folder of NDJSON files, plain or .gz, with "
        "its manifest.json), group each patient's resources, map them as the CDS Hooks service "
        "does, and evaluate every patient on the pack's subject drug (every patient with --all): "
        "a row per patient, or the report (--format html). Memory stays bounded whatever the "
        "export's size: resources the pack cannot use are counted, not kept, and the rest are "
        "grouped in partition files on disk. Exit status: 0 every patient evaluated and every "
        "line read, 1 a partition failed twice or a patient could not be evaluated (named on "
        "stderr and in the output), 2 some lines of the export could not be read (listed, with "
        "file and line; the rest was evaluated), or the export or an option could not be used.",
    )
    po.add_argument("export", metavar="EXPORT_DIR", help="the export's folder")
    po.add_argument(
        "--out",
        metavar="FILE",
        help="write here (default: standard output; a file appears only once complete)",
    )
    po.add_argument(
        "--format",
        choices=("jsonl", "csv", "parquet", "html"),
        help="jsonl, csv or parquet: a row per patient evaluated; html: the report (default: "
        "from --out's suffix, else jsonl)",
    )
    po.add_argument(
        "--as-of",
        type=_date,
        metavar="DATE",
        help="compute ages and durations as of this date, YYYY-MM-DD (default: the date of the "
        "manifest's transactionTime, else today; the output says which)",
    )
    po.add_argument(
        "--all", action="store_true", help="evaluate every patient, not only those on the drug"
    )
    po.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes on this machine (default: the number of cores, at most 8)",
    )
    po.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run on a Dask cluster: a scheduler's address (tcp://host:8786), or 'local' to "
        "start a LocalCluster here (needs pip install 'caveat[dask]')",
    )
    po.add_argument(
        "--partitions",
        type=int,
        metavar="N",
        help="group patients into N partitions (default: one per 32 MB of the export)",
    )
    po.add_argument(
        "--spill-dir",
        metavar="DIR",
        help="where the partition files go (default: the temporary folder); removed afterwards",
    )
    po.add_argument("--summary", metavar="FILE", help="also write the summary as JSON here")
    po.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    po.add_argument("--pack", metavar="DIR", help=pack_help)
    po.set_defaults(func=_command(".population", "cmd_population"))

    cases_help = "case files or directories (default: fixtures/cases)"

    ex = sub.add_parser("explain", help="why each rule applies, does not apply or is undetermined")
    ex.add_argument("file", metavar="SCENARIO", help="scenario or case file; - for stdin")
    ex.add_argument("--rule", metavar="ID", help="explain this rule only")
    ex.add_argument("--background", action="store_true", help="also list background statements")
    ex.add_argument("--include-draft", action="store_true", help=draft_help)
    ex.add_argument("--format", choices=("text", "json"), default="text")
    ex.add_argument(FILE_OPTION, **scenario_limit)
    ex.add_argument("--pack", metavar="DIR", help=pack_help)
    ex.set_defaults(func=_command(".scenario", "cmd_explain"))

    from ..schemas import NAMES as SCHEMAS

    sc = sub.add_parser(
        "schema",
        help="print the JSON Schema of a scenario (input) or of a result (output)",
        description="Print the JSON Schema (draft 2020-12) of a scenario, the input, or of a "
        "result, the output (as `evaluate --json` writes it), for callers in other languages.",
    )
    sc.add_argument("name", choices=SCHEMAS, metavar="{scenario,result}", help="which schema")
    sc.set_defaults(func=_command(".schema", "cmd_schema"))

    se = sub.add_parser(
        "serve",
        help="run the CDS Hooks 2.0 service (discovery, hooks, feedback, /evaluate)",
        description="Serve the pack(s) as CDS Hooks 2.0 services: GET /cds-services, POST "
        "/cds-services/{id} (order-select, order-sign, patient-view), POST "
        "/cds-services/{id}/feedback, POST /evaluate, GET /schemas/{scenario,result}.json, "
        "GET /healthz. Decision support from one document per pack; not medical advice.",
    )
    se.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    se.add_argument("--port", type=int, default=8080, help="port (default: 8080; 0: any free one)")
    se.add_argument(
        "--pack", action="append", metavar="DIR", help=pack_help + "; repeat for several packs"
    )
    se.add_argument(
        "--auth",
        choices=("none", "jwks"),
        default="none",
        help="none (only on a loopback address) or jwks: every request carries a CDS client's "
        "JWT, checked against the issuers of --auth-config (default: none)",
    )
    se.add_argument("--auth-config", metavar="FILE", help="trusted issuers and their JWKS")
    se.add_argument(
        "--base-url",
        metavar="URL",
        help="the URL clients call the service at, which their JWTs' aud must name "
        "(default: http://HOST:PORT)",
    )
    se.add_argument(
        "--feedback-log",
        default="caveat-feedback.jsonl",
        metavar="FILE",
        help="JSON Lines file feedback is appended to (default: ./caveat-feedback.jsonl)",
    )
    se.add_argument(
        "--max-body",
        type=size,
        default=2 * 1024 * 1024,
        metavar="SIZE",
        help="refuse request bodies larger than this with 413, e.g. 4M (default: 2M)",
    )
    se.add_argument(
        "--as-of",
        type=_date,
        metavar="DATE",
        help="compute ages and durations as of this date (default: the day of each request)",
    )
    se.add_argument(
        "--allow-origin",
        action="append",
        metavar="ORIGIN",
        help="let browser clients of this origin call the service (CORS), e.g. "
        "https://sandbox.cds-hooks.org; repeat for several",
    )
    se.add_argument(
        "--fetch-timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="time allowed for everything read from a client's FHIR server for one request; "
        "past it the request is answered 412 (default: 5)",
    )
    se.add_argument(
        "--log-level",
        choices=("critical", "error", "warning", "info", "debug"),
        default="warning",
        help="server log level (default: warning)",
    )
    se.set_defaults(func=_command(".service", "cmd_serve"))

    fb = sub.add_parser("feedback", help="what clinicians did with the service's cards")
    fb_verbs = fb.add_subparsers(dest="verb", metavar="VERB")
    fb.set_defaults(func=lambda a: (fb.print_help(), EXIT_INPUT)[1])
    fs = fb_verbs.add_parser("summary", help="outcomes per rule and per override reason")
    fs.add_argument("file", metavar="FILE", help="the feedback log (JSON Lines)")
    fs.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text for people (default), json for programs",
    )
    fs.set_defaults(func=_command(".service", "cmd_feedback_summary"))

    rules = sub.add_parser(
        "rules",
        help="author and govern rules: check, test, coverage, book, new, diff, review, release",
    )
    verbs = rules.add_subparsers(dest="verb", metavar="VERB")
    rules.set_defaults(func=lambda a: (rules.print_help(), EXIT_INPUT)[1])

    ch = verbs.add_parser("check", help="every problem of a pack, as file:line:column: message")
    ch.add_argument("pack", nargs="?", metavar="PACK", help=pack_help)
    ch.add_argument("--cases", nargs="*", metavar="PATH", help=cases_help)
    ch.add_argument("--format", choices=("text", "json"), default="text")
    ch.add_argument("--today", type=_date, metavar="DATE", help=today_help)
    ch.set_defaults(func=_command(".rules", "cmd_check"))

    te = verbs.add_parser("test", help="run the cases' expectations")
    te.add_argument("cases", nargs="*", metavar="CASES", help=cases_help)
    te.add_argument("--rule", metavar="ID", help="only cases whose expectations name this rule")
    te.add_argument("--case", metavar="NAME", help="only cases whose name matches (glob or part)")
    te.add_argument("--verbose", "-v", action="store_true", help="list passing cases too")
    te.add_argument("--include-draft", action="store_true", help=draft_help)
    te.add_argument("--pack", metavar="DIR", help=pack_help)
    te.set_defaults(func=_command(".rules", "cmd_test"))

    co = verbs.add_parser("coverage", help="rules with cases on both sides; sentences encoded")
    co.add_argument("--cases", nargs="*", metavar="PATH", help=cases_help)
    co.add_argument(
        "--fail-under", type=float, metavar="PERCENT", help="exit 1 when either table is below this"
    )
    co.add_argument("--format", choices=("text", "json"), default="text")
    co.add_argument("--include-draft", action="store_true", help=draft_help)
    co.add_argument("--today", type=_date, metavar="DATE", help=today_help)
    co.add_argument("--pack", metavar="DIR", help=pack_help)
    co.set_defaults(func=_command(".rules", "cmd_coverage"))

    bo = verbs.add_parser(
        "book",
        help="the pack as one HTML page for its reviewers: source, rules, cases, vocabulary",
        description="Write the pack book: one self-contained HTML page (no script, nothing "
        "fetched) that a reviewer reads top to bottom and can print and sign: the pack's "
        "version, digest, review status and changelog; the source text with each claim linked "
        "to its rules; each rule with its condition in words, caveats, evidence, reviews and "
        "cases (run now); the vocabulary. Exit status 2 when the pack cannot be loaded.",
    )
    bo.add_argument("--cases", nargs="*", metavar="PATH", help=cases_help)
    bo.add_argument(
        "--out",
        metavar="FILE",
        help="write here (default: standard output); a file appears only once complete",
    )
    bo.add_argument("--include-draft", action="store_true", help=draft_help)
    bo.add_argument("--today", type=_date, metavar="DATE", help=today_help)
    bo.add_argument("--pack", metavar="DIR", help=pack_help)
    bo.set_defaults(func=_command(".rules", "cmd_book"))

    ne = verbs.add_parser("new", help="scaffold a rule (and two cases) from a source sentence")
    which = ne.add_mutually_exclusive_group(required=True)
    which.add_argument("--quote", metavar="TEXT", help="a span of the source")
    which.add_argument("--sentence", type=int, metavar="N", help="sentence N of the source")
    ne.add_argument("--id", metavar="ID", help="the rule id (default: from the sentence)")
    ne.add_argument("--source", metavar="ID", help="source id (default: the pack's first)")
    ne.add_argument("--cases", metavar="DIR", help="where to write the cases")
    ne.add_argument("--pack", metavar="DIR", help=edit_help)
    ne.set_defaults(func=_command(".rules", "cmd_new"))

    di = verbs.add_parser("diff", help="what a change does to every case")
    di.add_argument("base", metavar="BASE", help="the pack before: a directory or a git revision")
    di.add_argument("--cases", nargs="*", metavar="PATH", help=cases_help)
    di.add_argument("--fail-on-change", action="store_true", help="exit 1 when a case changed")
    di.add_argument("--format", choices=("text", "json"), default="text")
    di.add_argument("--pack", metavar="DIR", help=pack_help)
    di.set_defaults(func=_command(".rules", "cmd_diff"))

    rv = verbs.add_parser(
        "review",
        help="record a review of rules in their rule files",
        description="Record that rules were reviewed (by whom, when, against which version). "
        "A review is a pack edit like any other: it changes the digest and needs a release.",
    )
    rv.add_argument("rules", nargs="+", metavar="RULE", help="the rules reviewed")
    rv.add_argument("--by", required=True, metavar="NAME", help="who reviewed them")
    rv.add_argument("--note", metavar="TEXT", help="what the reviewer said")
    rv.add_argument("--date", type=_date, metavar="DATE", help="when (default: today)")
    rv.add_argument("--pack", metavar="DIR", help=edit_help)
    rv.set_defaults(func=_command(".rules", "cmd_review"))

    re_ = verbs.add_parser(
        "release",
        help="set a new version and record it in the changelog",
        description="Set a new version and record it, with the pack's digest, in the changelog. "
        "Refused while `rules check`, `rules test` or `rules coverage --fail-under 100` fails.",
    )
    re_.add_argument("version", metavar="VERSION", help="the new version, e.g. 1.1.0")
    re_.add_argument(
        "--change",
        action="append",
        default=[],
        metavar="TEXT",
        required=True,
        help="what changed (repeat for several)",
    )
    re_.add_argument("--cases", nargs="*", metavar="PATH", help=cases_help)
    re_.add_argument("--pack", metavar="DIR", help=edit_help)
    re_.set_defaults(func=_command(".rules", "cmd_release"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    settle_streams()
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit:  # --help or --version said their piece (or usage was wrong): flushed
            if sys.stdout is not None:  # here, so that a closed pipe is a quiet success too
                sys.stdout.flush()
            raise
        if not getattr(args, "func", None):
            parser.print_help()
            return EXIT_INPUT
        if (closed := closed_stream(args)) is not None:
            raise Usage(f"{closed} is closed")
        return int(args.func(args))
    except PackError as exc:
        err = stderr()
        say(err, "error", "the knowledge pack cannot be loaded:")
        for p in exc.problems:
            if p.severity == "error":
                err.print(f"  {printable(str(p))}", markup=False)
        return EXIT_INPUT
    except Abandon as stop:
        return stop.status
    except Usage as exc:
        say(stderr(), "error", str(exc))
        return EXIT_INPUT
    except KeyboardInterrupt as stop:  # Ctrl-C, or (in a batch) SIGTERM or SIGHUP
        stderr().print("interrupted")
        return int(getattr(stop, "status", 130))
    except BrokenPipeError:  # the reader went away (`caveat ... | head`): a quiet success
        _drop_stdout()
        return EXIT_OK
    except BatchError as exc:
        say(stderr(), "error", str(exc))
        return EXIT_INPUT
    except OSError as exc:  # a disk full, a file that cannot be written: say so, no traceback
        where = f"{exc.filename}: " if exc.filename else ""
        say(stderr(), "error", f"{where}{exc.strerror or exc}")
        return EXIT_INPUT
    except CaveatError as exc:  # (as a setting in the environment that makes no sense)
        say(stderr(), "error", str(exc))
        return EXIT_INPUT


def _drop_stdout() -> None:
    """Send what is left for standard output to /dev/null: flushed at exit into the closed pipe,
    it would fail again, noisily ("Exception ignored ... BrokenPipeError", exit status 120)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # (no real standard output: nothing to flush)
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
