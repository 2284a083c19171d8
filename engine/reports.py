"""Batch reports: JSON Lines and JSON for programs; a table, Markdown and one HTML file for people.

A report is written in one pass: each case's record is added as it arrives (in input order), and
the summary is written at the end. Memory stays bounded: the per-case detail a human report keeps
(failures, errors and the rows of the case × rule matrix) is capped, and the report says so.

Case ids, file names and problems come from the input, so each report writes them for its medium
(engine/cleantext.py): the table with control characters escaped and rich markup never read,
Markdown as literal inline text (no heading, link or HTML can come from the input), HTML escaped
everywhere, attributes included. Any text a writer writes is UTF-8 (a file name that is not has
its odd bytes written as \xff escapes).
"""

from __future__ import annotations

import errno
import io
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, BinaryIO, ClassVar

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .batch import JSON_LINES, Chunk, Frame, Record
from .cleantext import code_span, markdown, markdown_code, no_surrogates
from .cleantext import terminal_text as _t
from .knowledge_base import KnowledgeBase
from .render import DISCLAIMER

FORMATS = ("table", "jsonl", "json", "markdown", "html")
SUFFIXES = {
    ".jsonl": "jsonl",
    ".json": "json",
    ".md": "markdown",
    ".html": "html",
    ".htm": "html",
    ".txt": "table",
}


@dataclass
class Row:
    case: str
    path: str
    line: int | None
    status: str
    problems: list[str]
    applied: dict[str, tuple[str, ...]]
    undetermined: list[str]
    description: str | None = None
    inputs: str | None = None
    rejected: bool = False
    needs: dict[str, list[str]] = field(default_factory=dict)
    detail: dict[str, Any] | None = None

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path


@dataclass
class Summary:
    """Counts over every case, and the detail a person reads, capped."""

    kb: KnowledgeBase
    max_rows: int = 2000
    max_listed: int = 1000
    cases: int = 0
    status: Counter[str] = field(default_factory=Counter)
    categories: Counter[str] = field(default_factory=Counter)
    rules: Counter[str] = field(default_factory=Counter)
    undetermined: Counter[str] = field(default_factory=Counter)
    caveats: Counter[str] = field(default_factory=Counter)
    failures: list[Row] = field(default_factory=list)
    errors: list[Row] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    interrupted: bool = False

    def add_chunk(self, chunk: Chunk) -> None:
        """Add a chunk's counts, and keep such of its records as a person will read."""
        tally = chunk.tally
        self.cases += chunk.size
        self.status.update(tally.status)
        self.categories.update(tally.categories)
        self.rules.update(tally.rules)
        self.undetermined.update(tally.undetermined)
        self.caveats.update(tally.caveats)
        if len(self.rows) < self.max_rows or tally.status["fail"] or tally.status["error"]:
            for record in chunk.records:
                self._keep(record)

    def _keep(self, record: Record) -> None:
        keep_row = len(self.rows) < self.max_rows
        listed = self.failures if record.status == "fail" else self.errors
        keep_listed = record.status in ("fail", "error") and len(listed) < self.max_listed
        if not (keep_row or keep_listed):
            return
        row = Row(
            case=record.case,
            path=record.path,
            line=record.line,
            status=record.status,
            problems=record.problems,
            applied={rule: caveats for rule, _, caveats in record.applied},
            undetermined=record.undetermined,
            description=record.description,
            inputs=record.inputs,
            rejected=record.rejected,
            needs=record.needs or {},
            detail=record.detail,
        )
        if keep_listed:
            listed.append(row)
        if keep_row or keep_listed:  # (a failure or error past the first rows has its row too)
            self.rows.append(row)

    @property
    def exit_code(self) -> int:
        """0 all met their expectations, 1 an expectation failed, 2 some input was bad."""
        if self.status["error"]:
            return 2
        if self.status["fail"]:
            return 1
        return 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "passed": self.status["pass"],
            "failed": self.status["fail"],
            "errors": self.status["error"],
            "evaluated": self.status["evaluated"],
            "interrupted": self.interrupted,
            "knowledge_base": self.kb.ref.model_dump(),
            "statements_by_category": dict(sorted(self.categories.items())),
            "rules": {r: self.rules[r] for r in sorted(self.rules)},
            "undetermined": {r: self.undetermined[r] for r in sorted(self.undetermined)},
            "caveats": {c: self.caveats[c] for c in sorted(self.caveats)},
        }

    def counts_line(self) -> str:
        errors = self.status["error"]
        return (
            f"{self.cases:,} cases: {self.status['pass']:,} passed, {self.status['fail']:,} "
            f"failed, {errors:,} error{'' if errors == 1 else 's'}, {self.status['evaluated']:,} "
            "evaluated without expectations" + (" (interrupted)" if self.interrupted else "")
        )

    def actual(self, row: Row) -> str:
        return actual(list(row.applied), row.undetermined)


def actual(applied: list[str], undetermined: list[str]) -> str:
    """What came out of a case, beside what its expectations asked."""
    return (
        f"actual: applies [{', '.join(applied) or 'none'}]; "
        f"undetermined [{', '.join(undetermined) or 'none'}]"
    )


class Writer:
    """Writes each chunk as it comes, and the summary at the end, to a binary stream."""

    frame: ClassVar[Frame | None] = None  # how it wants each case's JSON record framed, if at all
    kernel_copy = True  # copy spool files with sendfile, until the output or system refuses
    all_rules = False  # (html) a column for every rule, not only those the batch gave
    list_cases = False  # (table) a line per case, with its statements and caveats

    def __init__(self, out: BinaryIO, kb: KnowledgeBase) -> None:
        self.out = out
        self.kb = kb

    def text(self, text: str) -> None:
        self.out.write(no_surrogates(text).encode("utf-8"))

    def add_chunk(self, chunk: Chunk) -> None:
        pass

    def end(self, summary: Summary) -> None:
        pass

    def label(self, code: str) -> str:
        """A caveat's label for people ("third line"), or its code if the pack has none."""
        caveat = self.kb.caveats.get(code)
        return caveat.label if caveat is not None else code

    def copy(self, chunk: Chunk, skip: int = 0) -> None:
        """Write a chunk's framed JSON records but their first `skip` bytes: from memory, or from
        the file a worker wrote them to, copied file to file by the kernel where it can."""
        if chunk.text is not None:
            self.out.write(memoryview(chunk.text)[skip:])
            return
        assert chunk.spool is not None, "a chunk of output 'lines' has its records"
        path, size = chunk.spool
        with open(path, "rb") as source:
            if self.kernel_copy and self._sendfile(source.fileno(), skip, size):
                return
            source.seek(skip)
            self.out.write(source.read(size - skip))  # (a slot file may hold more after)

    def _sendfile(self, source: int, start: int, size: int) -> bool:
        """Copy bytes start..size of a file to the output with sendfile; False if that is not
        possible here (an in-memory stream, or a system whose sendfile only writes to sockets)."""
        try:
            self.out.flush()
            target = self.out.fileno()
        except (OSError, io.UnsupportedOperation):
            self.kernel_copy = False
            return False
        sent = start
        while sent < size:
            try:
                done = os.sendfile(target, source, sent, size - sent)
            except OSError as exc:
                if sent > start or exc.errno not in _NO_SENDFILE:
                    raise
                self.kernel_copy = False
                return False
            if done == 0:
                raise OSError(f"a spool file ended before its {size} bytes")
            sent += done
        return True


_NO_SENDFILE = {errno.EINVAL, errno.ENOSYS, errno.ENOTSOCK, errno.EOPNOTSUPP}


class JsonlWriter(Writer):
    frame = JSON_LINES

    def add_chunk(self, chunk: Chunk) -> None:
        self.copy(chunk)


class JsonWriter(Writer):
    frame = (b",\n", b"")  # a comma before every case but the first, which skips it

    def __init__(self, out: BinaryIO, kb: KnowledgeBase) -> None:
        super().__init__(out, kb)
        self.first = True
        self.text('{"cases": [\n')

    def add_chunk(self, chunk: Chunk) -> None:
        if chunk.size:
            self.copy(chunk, skip=len(self.frame[0]) if self.first else 0)
            self.first = False

    def end(self, summary: Summary) -> None:
        self.text('\n],\n"summary": ' + json.dumps(summary.to_dict(), indent=1) + "}\n")


def _category_label(kb: KnowledgeBase, category: str) -> str:
    return kb.categories[category].label if category in kb.categories else category


class TableWriter(Writer):
    def __init__(self, out: BinaryIO, kb: KnowledgeBase, console: Console | None = None) -> None:
        super().__init__(out, kb)
        self.console = console

    def end(self, s: Summary) -> None:
        if self.console is not None:
            self._tables(s, self.console)
            return
        buffer = io.StringIO()
        self._tables(s, Console(file=buffer, width=120, highlight=False))
        self.text(buffer.getvalue())

    def _tables(self, s: Summary, c: Console) -> None:
        ref = self.kb.ref
        head = Text("Batch report", style="bold")
        head.append(_t(f" pack {ref.id} {ref.version} ({ref.digest[:12]})"))
        c.print(head)
        if not ref.released:
            c.print(_t("the pack has changes not yet released under this version", "yellow"))
        c.print(_t(s.counts_line(), "bold red" if s.exit_code else "bold green"))
        for title, rows in (("Failures", s.failures), ("Errors", s.errors)):
            if not rows:
                continue
            total = s.status["fail" if title == "Failures" else "error"]
            table = Table(title=f"{title} ({total})", title_justify="left", show_lines=True)
            table.add_column("case")
            table.add_column("where")
            table.add_column("expected vs actual" if title == "Failures" else "problem")
            for row in rows:
                detail = "\n".join(row.problems)
                if title == "Failures":
                    detail += "\n" + s.actual(row)
                table.add_row(_t(row.case), _t(row.where), _t(detail, newlines=True))
            c.print(table)
        if self.list_cases:
            self._cases(s, c)
        table = Table(title="Statements by category", title_justify="left")
        table.add_column("category")
        table.add_column("statements", justify="right")
        for category, n in s.categories.most_common():
            table.add_row(_t(_category_label(self.kb, category)), f"{n:,}")
        c.print(table)
        table = Table(title="Rules", title_justify="left")
        table.add_column("rule")
        table.add_column("applied", justify="right")
        table.add_column("undetermined", justify="right")
        for rule in self.kb.rules:
            if s.rules[rule.id] or s.undetermined[rule.id]:
                table.add_row(_t(rule.id), f"{s.rules[rule.id]:,}", f"{s.undetermined[rule.id]:,}")
        c.print(table)
        if s.caveats:
            table = Table(title="Caveats", title_justify="left")
            table.add_column("caveat")
            table.add_column("times", justify="right")
            for code, n in s.caveats.most_common():
                table.add_row(_t(code), f"{n:,}")
            c.print(table)
        c.print(_t(DISCLAIMER, "dim"))

    def _cases(self, s: Summary, c: Console) -> None:
        """A line per case: its name, status, and statements with their caveats (? for those
        undetermined), folded where the terminal is narrow, never cut."""
        shown = f" (the first {len(s.rows):,} of {s.cases:,})" if s.cases > len(s.rows) else ""
        c.print(Text(f"Cases{shown}", style="bold"))
        for row in s.rows:
            status = CASE_STATUS["rejected" if row.rejected else row.status]
            said = [
                f"{rule} [{', '.join(self.label(code) for code in codes)}]" if codes else rule
                for rule, codes in row.applied.items()
            ] + [f"? {rule}" for rule in row.undetermined]
            text = "; ".join(said) or ("; ".join(row.problems) if row.problems else "nothing")
            line = _t(row.case, "bold")
            line.append(f" · {status} · ", style="red" if row.status in ("fail", "error") else "")
            line.append_text(_t(text))
            c.print(line, soft_wrap=True)  # (a line each: the terminal folds it, nothing cuts it)


CASE_STATUS = {
    "pass": "passed",
    "fail": "failed",
    "error": "error",
    "evaluated": "no expectations",
    "rejected": "rejected as expected",
}


class MarkdownWriter(Writer):
    def end(self, s: Summary) -> None:
        ref = self.kb.ref
        parts: list[str] = []
        w = parts.append
        w(f"# Batch report: {markdown(ref.id)} {markdown(ref.version)}\n\n")
        unreleased = "" if ref.released else " (changes not yet released under this version)"
        w(f"Pack digest {code_span(ref.digest)}{unreleased}.\n\n")
        w(
            "| cases | passed | failed | errors | without expectations |\n"
            "|---:|---:|---:|---:|---:|\n"
        )
        w(
            f"| {s.cases:,} | {s.status['pass']:,} | {s.status['fail']:,} | "
            f"{s.status['error']:,} | {s.status['evaluated']:,} |\n\n"
        )
        if s.interrupted:
            w("**Interrupted:** the counts cover the cases done before the run was stopped.\n\n")
        for title, rows, key in (("Failures", s.failures, "fail"), ("Errors", s.errors, "error")):
            if not rows:
                continue
            w(f"## {title} ({s.status[key]})\n\n")
            for row in rows:
                w(f"### {markdown_code(row.case)} ({markdown(row.where)})\n\n")
                for problem in row.problems:
                    w(f"- {markdown(problem)}\n")
                if key == "fail":
                    w(f"- {markdown(s.actual(row))}\n")
                w("\n")
            if s.status[key] > len(rows):
                w(f"_{s.status[key] - len(rows)} more not listed._\n\n")
        w("## Statements by category\n\n| category | statements |\n|---|---:|\n")
        for category, n in s.categories.most_common():
            w(f"| {markdown(_category_label(self.kb, category))} | {n:,} |\n")
        w("\n## Rules\n\n| rule | applied | undetermined |\n|---|---:|---:|\n")
        for rule in self.kb.rules:
            if s.rules[rule.id] or s.undetermined[rule.id]:
                w(
                    f"| {code_span(rule.id)} | {s.rules[rule.id]:,} | "
                    f"{s.undetermined[rule.id]:,} |\n"
                )
        w("\n## Caveats\n\n| caveat | times |\n|---|---:|\n")
        for code, n in s.caveats.most_common():
            w(f"| {code_span(code)} | {n:,} |\n")
        w(f"\n_{DISCLAIMER}_\n")
        self.text("".join(parts))


# The HTML report, a page of its own (engine.report_html), which builds on the above.
from .report_html import HtmlWriter  # noqa: E402

WRITERS: dict[str, type[Writer]] = {
    "jsonl": JsonlWriter,
    "json": JsonWriter,
    "table": TableWriter,
    "markdown": MarkdownWriter,
    "html": HtmlWriter,
}
