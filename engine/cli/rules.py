"""`caveat rules check | test | coverage | book | new | diff | review | release`: the author's and
the reviewer's verbs, one shape for all (a pack, a case library, text or JSON out)."""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from ..authoring import (
    Refused,
    check_pack,
    coverage,
    default_cases,
    diff,
    library,
    release,
    review,
    scaffold,
)
from ..authoring.library import mentions
from ..batch import run_chunks
from ..cleantext import printable
from ..knowledge_base import KnowledgeBase, load_knowledge_base
from ..pack import MANIFEST
from ..reports import Summary, actual
from ..suggestions import did_you_mean
from .common import (
    EXIT_FAILED,
    EXIT_OK,
    Usage,
    case_paths,
    load_pack,
    pack_dir,
    pack_to_edit,
    say,
    stderr,
    stdout,
    today,
)


def cmd_check(args: argparse.Namespace) -> int:
    root = pack_dir(args.pack)
    report = check_pack(root, args.cases, today=args.today or today())
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
            print(printable(str(problem)))
        print(f"{root}: {len(report.errors)} error(s), {len(report.warnings)} warning(s)")
    return EXIT_FAILED if report.errors else EXIT_OK


def _selected(args: argparse.Namespace, kb: KnowledgeBase) -> list[Any]:
    entries = []
    for entry, case in library(case_paths(args.cases, kb)):
        if args.rule and (case is None or args.rule not in mentions(case)):
            continue
        if args.case and not (fnmatch.fnmatch(entry.name, args.case) or args.case in entry.name):
            continue
        entries.append(entry)
    return entries


def cmd_test(args: argparse.Namespace) -> int:
    kb = load_pack(args.pack)
    if args.rule and args.rule not in kb.rule_index:
        raise Usage(f"no rule {args.rule!r}{did_you_mean(args.rule, kb.rule_index)}")
    entries = _selected(args, kb)
    if not entries:
        raise Usage("no case matches")
    summary = Summary(kb)
    chunks = run_chunks(
        entries, kb=kb, workers=1, include_draft=args.include_draft, output="records"
    )
    for chunk in chunks:
        summary.add_chunk(chunk)
        for record in chunk.records:
            if record.status not in ("fail", "error") and not args.verbose:
                continue
            where = f"{record.path}:{record.line}" if record.line else record.path
            print(printable(f"{record.status.upper():5} {record.case}  ({where})"))
            for problem in record.problems:
                print(printable(f"      {problem}"))
            if record.status == "fail":
                print(f"      {actual([r for r, _, _ in record.applied], record.undetermined)}")
    print(summary.counts_line())
    return summary.exit_code


def cmd_coverage(args: argparse.Namespace) -> int:
    kb = load_pack(args.pack)
    result = coverage(
        kb,
        case_paths(args.cases, kb),
        include_draft=args.include_draft,
        today=args.today or today(),
    )
    if args.format == "json":
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
    else:
        out = stdout()
        rules = Table(
            title=f"Rules: {result.rule_percent:.1f}% covered "
            "(a case where each applies and a near miss where it must not)",
            title_justify="left",
        )
        for column in ("rule", "applies in", "near misses", "", "last review"):
            rules.add_column(column)
        for row in result.rules:
            if row.status != "active":
                mark = row.status  # not counted
            else:
                mark = "background" if row.background else "covered" if row.covered else "UNCOVERED"
            rules.add_row(row.rule, _few(row.applies), _few(row.near_misses), mark, row.review)
        rules.caption = (
            "applies in / near misses: the number of cases, and the first of them; "
            "draft and retired rules are not counted"
        )
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
        say(
            stderr(),
            "coverage",
            f"below {args.fail_under:g}% (rules "
            f"{result.rule_percent:.1f}%, source {result.source_percent:.1f}%)",
        )
        return EXIT_FAILED
    return EXIT_OK


def cmd_book(args: argparse.Namespace) -> int:
    """The pack book: one self-contained HTML page, to standard output or, once complete, to
    --out (checked before any work)."""
    from ..authoring.book import build_book
    from .batch import atomic_output, output_target

    if args.out is not None:
        output_target(args.out)  # a directory, or a name in no directory: refused now
    kb = load_pack(args.pack)
    cases = [Path(p) for p in args.cases] if args.cases else default_cases(kb.root)
    page = build_book(kb, cases, today=args.today or today(), include_draft=args.include_draft)
    with atomic_output(args.out) as out:
        out.write(page.encode("utf-8"))
    if args.out is not None:
        stderr().print(
            printable(
                f"wrote {args.out}: the book of {kb.id} {kb.version} ({len(kb.rules)} rules)"
            ),
            markup=False,
            highlight=False,
        )
    return EXIT_OK


def _few(names: list[str]) -> str:
    return f"{len(names)}: {names[0]}" if names else "0"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def cmd_new(args: argparse.Namespace) -> int:
    kb = load_knowledge_base(pack_to_edit(args.pack))
    cases_dir = Path(args.cases) if args.cases else (default_cases(kb.root) or [None])[0]
    if cases_dir is None:
        raise Usage("no case library found (fixtures/cases); give --cases DIR")
    try:
        made = scaffold(
            kb,
            quote=args.quote,
            sentence=args.sentence,
            rule_id=args.id,
            source_id=args.source,
            cases_dir=Path(cases_dir),
        )
    except ValueError as exc:
        raise Usage(str(exc)) from None
    print(f"created {made.rule_file} (sentence {made.sentence})")
    print(f"created {made.case_file} (a case where it applies and a near miss)")
    print(f"concepts in the sentence: {', '.join(made.concepts) or 'none found'}")
    if made.already:
        print(f"already encoded by: {', '.join(made.already)}")
    print("next: replace every TODO in both files, then run `caveat rules check`")
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    kb = load_pack(args.pack)
    cases = case_paths(args.cases, kb)
    try:
        result = diff(kb, args.base, cases)
    except ValueError as exc:
        raise Usage(str(exc)) from None
    if args.format == "json":
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
    else:
        print(
            f"{kb.id} {result.base_version} ({args.base}) -> {result.version} (now), "
            f"{result.cases} cases"
        )
        for change in result.changed:
            print(printable(f"changed: {change.case}  ({change.path})"))
            for line in change.changes:
                print(printable(f"    {line}"))
        print(f"{len(result.changed)} changed, {result.unchanged} unchanged")
    return EXIT_FAILED if args.fail_on_change and result.changed else EXIT_OK


def cmd_release(args: argparse.Namespace) -> int:
    root = pack_to_edit(args.pack)
    try:
        digest = release(root, args.version, args.change, today().isoformat(), cases=args.cases)
    except Refused as exc:
        say(stderr(), "error", str(exc))
        return EXIT_FAILED
    print(f"{root / MANIFEST}: version {args.version}, digest {digest}")
    return EXIT_OK


def cmd_review(args: argparse.Namespace) -> int:
    root = pack_to_edit(args.pack)
    date = (args.date or today()).isoformat()
    try:
        changed = review(root, args.rules, args.by, date, note=args.note)
    except Refused as exc:
        raise Usage(str(exc)) from None
    names = ", ".join(args.rules)
    print(f"recorded a review of {names} by {args.by.strip()} on {date}")
    for path in changed:
        print(f"  changed {path}")
    print("the pack's digest changed: release it (`caveat rules release VERSION --change TEXT`)")
    return EXIT_OK
