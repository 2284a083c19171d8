"""Reading case files: YAML and JSON files of one or many cases, and JSON Lines in blocks.

What is read is not validated here: each case comes out as a `CaseEntry` holding its data, or why
it could not be read (with file and line), and engine.cases evaluates it. JSON Lines come in blocks
of whole lines (`Lines`) that a batch hands to its workers unsplit; `parse_entry` parses a record
where it is evaluated.
"""

from __future__ import annotations

import stat
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NamedTuple

from .jsonfile import UNSURE, parse_json, parse_json_quickly
from .reading import (
    DEFAULT_LIMITS,
    LINE_OPTION,
    InputError,
    Limits,
    Refused,
    blocking,
    case_files,
    size_text,
)
from .scenario import CASE_FILE_VALUES, read_document
from .yamlfile import YamlProblem

# ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CaseEntry:
    """One case as read from a file: its data (not yet validated), or why it could not be read.

    A plain dataclass rather than a model: it only carries input to the validator, and a batch
    makes and ships one per case, so it has to be cheap."""

    path: str
    index: int  # position in its file (0 for a one-case file)
    line: int | None = None
    data: Any = None
    error: str | None = None
    raw: bool = False  # data is a JSON Lines record (bytes) not yet parsed
    listed: bool = False  # one of several cases in its file

    @property
    def name(self) -> str:
        case_id = self.data.get("id") if isinstance(self.data, dict) else None
        if isinstance(case_id, str) and case_id:
            return case_id
        return f"{self.path}#{self.index + 1}" if self.listed else self.path


BLOCK = 64 * 1024  # bytes of JSON Lines read at a time: a chunk of work, some 350 typical records


class Lines(NamedTuple):
    """Whole lines of a JSON Lines file, as read. They are parsed only where they are evaluated:
    a batch's reading process counts a block's records and hands the block to a worker as it is.
    A line is a record unless it is blank (only ASCII white space)."""

    path: str
    index: int  # the position in the file of the block's first record
    line: int  # the number of the block's first line
    text: bytes
    count: int  # the records in the block

    def entries(self) -> Iterator[CaseEntry]:
        for index, (number, raw) in enumerate(_records(self.text, self.line), start=self.index):
            yield CaseEntry(
                path=self.path, index=index, line=number, data=raw, raw=True, listed=True
            )


def _records(text: bytes, first_line: int) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of each record in whole lines: every line but the blank ones (the
    piece after a final newline is blank too). About 1 µs a KB."""
    return ((n, raw) for n, raw in enumerate(text.split(b"\n"), start=first_line) if raw.strip())


def _jsonl_blocks(
    handle: IO[Any], name: str, max_line: int = DEFAULT_LIMITS.json_line
) -> Iterator[Lines | CaseEntry]:
    """A JSON Lines stream in blocks of whole lines: as much as one read gives (so a pipe is
    answered as it flows), cut after its last newline; a line longer than a read is joined whole,
    up to `max_line` bytes: a longer line is that record's error, and is skipped unread."""
    binary = getattr(handle, "buffer", handle)
    read = getattr(binary, "read1", binary.read)
    index, line = 0, 1
    held: list[bytes] = []  # the start of a line not yet ended
    held_size = 0
    skipping = False  # inside a line past the limit, until its end

    def block(text: bytes) -> Lines:
        nonlocal index, line
        lines = Lines(name, index, line, text, sum(1 for _ in _records(text, line)))
        index += lines.count
        line += text.count(b"\n")
        return lines

    def too_long() -> CaseEntry:
        nonlocal index, line
        entry = CaseEntry(
            path=name,
            index=index,
            line=line,
            listed=True,
            error=f"{name}:{line}: a line longer than the {size_text(max_line)} limit for a "
            f"JSON Lines record (raise it with {LINE_OPTION})",
        )
        index += 1
        line += 1
        return entry

    first = True
    while piece := read(BLOCK):
        if isinstance(piece, str):  # a text stream with no bytes underneath (io.StringIO)
            piece = piece.encode("utf-8")
        if first:
            piece, first = piece.removeprefix(b"\xef\xbb\xbf"), False  # a byte-order mark
        cut = piece.rfind(b"\n") + 1
        if skipping:
            end = piece.find(b"\n")
            if end < 0:
                continue
            skipping = False
            yield too_long()
            piece, cut = piece[end + 1 :], cut - end - 1
        if cut == 0:
            held.append(piece)
            held_size += len(piece)
            if held_size > max_line:
                held, held_size, skipping = [], 0, True
            continue
        first = piece.find(b"\n")
        if held_size + first > max_line:  # the line held so far ends here, too long
            held, held_size = [], 0
            yield too_long()
            piece, cut = piece[first + 1 :], cut - first - 1
        whole = b"".join([*held, piece[:cut]]) if held else piece[:cut]
        if len(whole) > max_line and max(len(x) for x in whole.split(b"\n")) > max_line:
            yield from _split_long(whole, max_line, block, too_long)
        elif whole:
            yield block(whole)
        held = [piece[cut:]] if cut < len(piece) else []
        held_size = len(held[0]) if held else 0
    if skipping or held_size > max_line:
        yield too_long()
    elif held:
        yield block(b"".join(held))


def _split_long(whole: bytes, max_line: int, block: Any, too_long: Any) -> Iterator[Any]:
    """Whole lines among which some are too long: the others in blocks, those as errors."""
    run: list[bytes] = []
    for raw in whole.split(b"\n")[:-1]:
        if len(raw) > max_line:
            if run:
                yield block(b"".join(run))
                run = []
            yield too_long()
        else:
            run.append(raw + b"\n")
    if run:
        yield block(b"".join(run))


def read_cases(
    paths: Sequence[str | Path],
    stdin: IO[Any] | None = None,
    *,
    parse_json_lines: bool = True,
    limits: Limits = DEFAULT_LIMITS,
) -> Iterator[CaseEntry | Lines]:
    """Every case in the given files and directories, streamed: a JSON Lines file is read a block
    at a time, so its size does not matter (its lines are limited, and YAML and JSON files, by
    `limits`). Unreadable input becomes an entry with an error: nothing named or found is passed
    over in silence. Without `parse_json_lines`, JSON Lines come as `Lines` blocks, to be split
    and parsed where they are evaluated (`entries_of`)."""
    for path in case_files(paths):
        if isinstance(path, Refused):
            yield CaseEntry(path=path.path, index=0, error=str(path))
            continue
        if path == "-":
            handle = stdin if stdin is not None else sys.stdin
            blocking(handle)
            blocks = _jsonl_blocks(handle, "<stdin>", limits.json_line)
            yield from _records_or_none(_jsonl(blocks, parse_json_lines), "<stdin>")
            continue
        assert isinstance(path, Path)
        name = str(path)
        if path.suffix == ".jsonl":
            try:
                with _open_lines(path) as handle:
                    blocks = _jsonl_blocks(handle, name, limits.json_line)
                    yield from _records_or_none(_jsonl(blocks, parse_json_lines), name)
            except InputError as exc:
                yield CaseEntry(path=name, index=0, error=str(exc))
            except OSError as exc:
                yield CaseEntry(path=name, index=0, error=f"{name}: cannot read: {exc.strerror}")
            continue
        try:
            data = read_document(
                path, limit=limits.case_file, what="a case file", max_values=CASE_FILE_VALUES
            )
        except YamlProblem as exc:
            yield CaseEntry(
                path=name, index=0, line=exc.mark.line if exc.mark else None, error=str(exc)
            )
            continue
        if isinstance(data, list) and not data:
            yield CaseEntry(path=name, index=0, line=1, error=f"{name}: the list holds no cases")
        elif isinstance(data, list):
            marks = getattr(data, "item_marks", None)
            for i, item in enumerate(data):
                line = marks[i].line if marks else None
                yield CaseEntry(path=name, index=i, line=line, data=item, listed=True)
        elif data is None:
            yield CaseEntry(path=name, index=0, error=f"{name}: the file is empty")
        else:
            yield CaseEntry(path=name, index=0, line=1, data=data)


def _records_or_none(items: Iterator[Any], name: str) -> Iterator[Any]:
    """JSON Lines as read, or an error for a stream that holds no record at all (an empty file
    is not taken for a set of cases that all passed)."""
    records = 0
    for item in items:
        records += cases_in(item)
        yield item
    if records == 0:
        yield CaseEntry(
            path=name, index=0, error=f"{name}: no records (empty, or blank lines only)"
        )


def _open_lines(path: Path) -> IO[bytes]:
    """A JSON Lines file opened for reading: a regular file or a FIFO, never a device."""
    mode = path.stat().st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
        raise InputError(str(path), "not a regular file: refused, not read")
    return path.open("rb")


def _jsonl(blocks: Iterator[Lines | CaseEntry], parse: bool) -> Iterator[CaseEntry | Lines]:
    if not parse:
        yield from blocks
        return
    for block in blocks:
        if isinstance(block, CaseEntry):
            yield block
            continue
        for entry in block.entries():
            yield parse_entry(entry)


def entries_of(item: Any) -> Iterator[CaseEntry]:
    """The case entries in what `read_cases` yields (an entry, or a block of JSON Lines), or the
    one case that a bare scenario mapping is."""
    if isinstance(item, Lines):
        yield from item.entries()
    elif isinstance(item, CaseEntry):
        yield item
    else:
        yield CaseEntry(path="<input>", index=0, data=item)


def cases_in(item: Any) -> int:
    """How many cases `entries_of(item)` gives, without splitting a block."""
    return item.count if isinstance(item, Lines) else 1


def parse_entry(entry: CaseEntry) -> CaseEntry:
    """Parse a raw JSON Lines record (a no-op for anything else)."""
    if not entry.raw:
        return entry
    where = dict(path=entry.path, index=entry.index, line=entry.line, listed=entry.listed)
    text = entry.data
    quick = parse_json_quickly(text)
    if quick is not UNSURE:
        return CaseEntry(**where, data=quick)
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            at = f"{entry.path}:{entry.line}:{exc.start + 1}"
            return CaseEntry(**where, error=f"{at}: not valid UTF-8 (byte {text[exc.start]:#04x})")
    try:
        data = parse_json(text, entry.path, entry.line or 1)
    except YamlProblem as exc:
        return CaseEntry(**where, error=str(exc))
    return CaseEntry(**where, data=data)
