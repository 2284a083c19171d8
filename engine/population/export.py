"""A FHIR Bulk Data export on disk: its manifest, its NDJSON files (plain or gzip-compressed) and
their lines, each with the file and line it came from.

An export is a directory holding `manifest.json` (the body of the `$export` status request's
complete response: `transactionTime`, `output: [{type, url, count}]`) and one or more NDJSON files
per resource type (`Condition.ndjson`, `Condition.2.ndjson`, `Observation.ndjson.gz`). Without a
manifest, every `*.ndjson` and `*.ndjson.gz` in the directory is read, its type taken from the
resources themselves. A manifest's `url` is read as a file name in the directory (its last path
segment): the export's files are read where they were downloaded to, never fetched.
"""

from __future__ import annotations

import datetime as dt
import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import CaveatError

MANIFEST = "manifest.json"
SUFFIXES = (".ndjson", ".ndjson.gz")
MAX_LINE = 64 * 1024 * 1024  # a line longer than this is reported, not held in memory whole


class ExportError(CaveatError):
    """An export that cannot be read at all (no directory, no NDJSON file, a broken manifest)."""


class DamagedFile(ExportError):
    """A file that cannot be read past a line (a damaged gzip stream, an I/O error): what came
    before it was read."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line:,}: {reason}")
        self.line = line
        self.reason = reason


class OutputFile(BaseModel):
    """One entry of a Bulk Data manifest's `output`."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="the resource type the file holds, e.g. Condition")
    url: str = Field(description="where the server offered the file; its last segment is read")
    count: int | None = Field(None, description="how many resources the server said it holds")


class Manifest(BaseModel):
    """The parts of a Bulk Data export manifest that are read."""

    model_config = ConfigDict(extra="allow")

    transactionTime: str | None = Field(
        None, description="the time the export reflects (an instant); ages are computed on it"
    )
    output: list[OutputFile] = Field(default_factory=list, description="the files exported")


class ExportFile(BaseModel):
    """An NDJSON file of the export, as it will be read."""

    path: Path = Field(description="the file on disk")
    type: str | None = Field(description="the resource type the manifest names, if it does")
    size: int = Field(description="its size in bytes on disk (compressed, for a .gz file)")

    @property
    def compressed(self) -> bool:
        return self.path.name.endswith(".gz")


class Export(BaseModel):
    """An export directory: its files (Medication files first, then by name) and manifest."""

    directory: Path = Field(description="the export's directory")
    files: list[ExportFile] = Field(description="the NDJSON files to read, in reading order")
    manifest: Manifest | None = Field(description="its manifest, when it has one")

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)


def open_export(directory: str | Path) -> Export:
    """Find an export's files, from its manifest when it has one."""
    root = Path(directory)
    if not root.exists():
        raise ExportError(f"{root}: no such directory (give the folder a Bulk Data export is in)")
    if not root.is_dir():
        raise ExportError(f"{root}: not a directory (give the folder a Bulk Data export is in)")
    manifest = _manifest(root)
    files: list[ExportFile] = []
    if manifest is not None and manifest.output:
        for i, entry in enumerate(manifest.output):
            name = entry.url.rstrip("/").rsplit("/", 1)[-1]
            path = root / name
            if not path.is_file():
                raise ExportError(
                    f"{root / MANIFEST}: output[{i}] names {name!r}, which is not in {root} "
                    "(download every file the manifest lists into the same folder)"
                )
            files.append(ExportFile(path=path, type=entry.type, size=path.stat().st_size))
    else:
        for path in sorted(root.iterdir()):
            if path.is_file() and path.name.endswith(SUFFIXES):
                files.append(ExportFile(path=path, type=None, size=path.stat().st_size))
    if not files:
        raise ExportError(
            f"{root}: no NDJSON file (*.ndjson or *.ndjson.gz) and no manifest listing one"
        )
    files.sort(
        key=lambda f: (
            f.type != "Medication" and not f.path.name.startswith("Medication."),
            f.path.name,
        )
    )
    return Export(directory=root, files=files, manifest=manifest)


def _manifest(root: Path) -> Manifest | None:
    path = root / MANIFEST
    if not path.is_file():
        return None
    try:
        data = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ExportError(f"{path}: not JSON ({exc}); fix or remove the manifest") from None
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top)"
        raise ExportError(f"{path}: {where}: {first['msg']} (not a Bulk Data manifest?)") from None


AsOfSource = Literal["--as-of", "manifest transactionTime", "today"]


def as_of_date(
    given: dt.date | None, manifest: Manifest | None, today: dt.date
) -> tuple[dt.date, AsOfSource]:
    """The date ages and durations are computed on, and where it came from: the one given, else
    the date of the export's transactionTime (the day it reflects), else today."""
    if given is not None:
        return given, "--as-of"
    stamp = manifest.transactionTime if manifest else None
    if stamp:
        try:
            return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).date(), (
                "manifest transactionTime"
            )
        except ValueError:
            raise ExportError(
                f"{MANIFEST}: transactionTime {stamp[:60]!r} is not an instant (like "
                "2025-06-01T08:00:00Z); fix it, or give --as-of DATE"
            ) from None
    return today, "today"


class Line(BaseModel):
    """Where a line is: for messages that name it."""

    file: str = Field(description="the file's name")
    line: int = Field(description="the line's number, from 1")


def read_lines(path: Path) -> Iterator[tuple[int, bytes | str]]:
    """The non-blank lines of an NDJSON file (gzip-compressed when its name ends .gz), numbered
    from 1; a line longer than MAX_LINE is given as why it was not read (a str), never held
    whole. A damaged file raises DamagedFile at the first line it cannot give."""
    opener: Any = gzip.open if path.name.endswith(".gz") else open
    number = 0
    try:
        with opener(path, "rb") as stream:
            for number, raw in _numbered(stream, 1, None):
                yield number, raw
    except (OSError, EOFError, zlib.error) as exc:
        raise DamagedFile(
            number + 1,
            f"cannot be read after line {number:,} ({exc}): the file is damaged or was not "
            "downloaded whole; the lines before were read",
        ) from None


def _numbered(stream: Any, first: int, size: int | None) -> Iterator[tuple[int, bytes | str]]:
    """Lines from `stream`, numbered from `first`, until `size` bytes were read (None: to the
    end), each read MAX_LINE bytes at most at a time."""
    number, done = first - 1, 0
    while size is None or done < size:
        raw = stream.readline(MAX_LINE + 1)
        if not raw:
            return
        done += len(raw)
        number += 1
        if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):  # the rest of the line, a piece at a time
                raw = stream.readline(MAX_LINE)
                done += len(raw)
            yield number, f"longer than {MAX_LINE // (1024 * 1024)} MB: not read"
        elif raw.strip():
            yield number, raw


Chunk = tuple[str, str, int, int, int]  # (path, file name, start, end or -1, first line's number)
CHUNK_BYTES = 64 * 1024 * 1024  # an uncompressed file is read in ranges of about this size


def chunks_of(file: ExportFile, size: int = CHUNK_BYTES) -> list[Chunk]:
    """Ranges of a file that can be read apart: a gzip file whole, a plain one in ranges of
    about `size` bytes that end at a line's end, each with the number of its first line (counted
    here, so that every line keeps its file and line wherever it is read)."""
    path = str(file.path)
    if file.compressed or file.size <= size:
        return [(path, file.path.name, 0, -1, 1)]
    out: list[Chunk] = []
    start, line = 0, 1
    with open(path, "rb") as stream:
        while start < file.size:
            stream.seek(start + size)
            stream.readline()
            end = min(stream.tell(), file.size)
            stream.seek(start)
            count, left = 0, end - start
            while left > 0:
                block = stream.read(min(left, 1 << 20))
                count += block.count(b"\n")
                left -= len(block)
            out.append((path, file.path.name, start, end, line))
            line += count
            start = end
    return out


def chunk_lines(chunk: Chunk) -> Iterator[tuple[int, bytes | str]]:
    """The non-blank lines of a chunk, numbered as in their file (see read_lines)."""
    path, _, start, end, first = chunk
    if end < 0:
        yield from read_lines(Path(path))
        return
    try:
        with open(path, "rb") as stream:
            stream.seek(start)
            yield from _numbered(stream, first, end - start)
    except OSError as exc:
        raise DamagedFile(first, f"bytes {start:,} to {end:,} cannot be read ({exc})") from None


def parse_line(raw: bytes) -> dict[str, Any] | str:
    """A line as a resource, or why it is not one."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return f"not JSON ({str(exc).split(':', 1)[0]})"
    if not isinstance(value, dict):
        return f"a JSON {type(value).__name__}, not a resource"
    rtype = value.get("resourceType")
    if not isinstance(rtype, str) or not rtype:
        return "an object without resourceType: not a resource"
    return value
