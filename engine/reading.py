"""Reading input, bounded: which paths are read, how much of each, and why one is not.

Every limit is checked while reading, before anything is parsed, so `/dev/zero` or a 500 MB file
costs a read of the limit and one line of error, not the machine's memory. Directories are
searched for case files with a reason for every path that cannot be read: an unreadable
directory, a broken symbolic link, a loop, or a FIFO or device named like a case file (refused,
never opened for reading, since reading one can block forever or never end). Nothing is skipped
without a word.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, Field

from .yamlfile import Mark, YamlProblem

KiB = 1024
MiB = 1024 * KiB

CASE_SUFFIXES = (".yaml", ".yml", ".json", ".jsonl")


class Limits(BaseModel):
    """How much input is read before it is refused. Each limit has a command-line option that
    raises it, named in the error that enforces it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scenario_file: int = Field(
        default=256 * KiB, gt=0, description="bytes of one scenario file (`caveat evaluate`)"
    )
    case_file: int = Field(
        default=4 * MiB,
        gt=0,
        description="bytes of one YAML or JSON case file in a batch (JSON Lines files are "
        "read a line at a time, so only their lines are limited)",
    )
    json_line: int = Field(default=1 * MiB, gt=0, description="bytes of one JSON Lines record")


DEFAULT_LIMITS = Limits()
FILE_OPTION = "--max-file-size"
LINE_OPTION = "--max-line-size"


def size_text(size: int) -> str:
    """16777216 -> '16 MiB'."""
    for unit, name in ((MiB, "MiB"), (KiB, "KiB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {name}"
    return f"{size:,} bytes"


def parse_size(text: str) -> int:
    """'16M', '512K', '2G', '1048576' or '1 MiB' as a number of bytes (ValueError otherwise)."""
    found = re.fullmatch(r"\s*(\d+)\s*([KMG]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not found or int(found[1]) == 0:
        raise ValueError(f"{text!r} is not a size like 16M, 512K or 2G")
    return int(found[1]) * {"": 1, "K": KiB, "M": MiB, "G": 1024 * MiB}[found[2].upper()]


class InputError(Exception):
    """A path that is not read, and why (one line, the path first)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


def _why(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "a symbolic link loop"
    return exc.strerror or str(exc)


def read_limited(
    path: str | Path, limit: int, what: str, option: str, *, pipes: bool = True
) -> bytes:
    """The bytes of a file, refused (InputError) past `limit` bytes, without reading further.
    A regular file, or with `pipes` a FIFO (a shell's `<(...)` or /dev/stdin fed by a pipe);
    never a device. Raises InputError for anything that cannot be read."""
    name = str(path)
    try:
        before = os.stat(path)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError) and os.path.islink(path):
            raise InputError(name, "a broken symbolic link") from None
        if isinstance(exc, FileNotFoundError):
            raise InputError(name, "no such file or directory") from None
        raise InputError(name, f"cannot read: {_why(exc)}") from None
    regular = stat.S_ISREG(before.st_mode)
    if not (regular or (pipes and stat.S_ISFIFO(before.st_mode))):
        raise InputError(name, f"{_kind(before.st_mode)}, not a regular file: refused, not read")
    if regular and before.st_size > limit:
        raise _too_large(name, limit, what, option)
    try:
        # not blocking on a FIFO swapped in after the check; a regular file ignores the flag
        flags = os.O_RDONLY | (os.O_NONBLOCK if regular else 0)
        fd = os.open(path, flags)
    except OSError as exc:
        raise InputError(name, f"cannot read: {_why(exc)}") from None
    with open(fd, "rb", closefd=True) as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if stat.S_ISREG(mode) != regular:
            raise InputError(name, f"{_kind(mode)}, not a regular file: refused, not read")
        return read_stream(handle, limit, name, what, option)


def blocking(handle: Any) -> None:
    """Make a stream's descriptor blocking: a non-blocking one (left so by another program)
    would end a read early, and input would be lost without a word."""
    with contextlib.suppress(AttributeError, OSError, ValueError, io.UnsupportedOperation):
        os.set_blocking(handle.fileno(), True)


def read_stream(handle: IO[bytes], limit: int, name: str, what: str, option: str) -> bytes:
    """At most `limit` bytes of a binary stream; InputError if it holds more."""
    blocking(handle)
    parts: list[bytes] = []
    size = 0
    try:
        while size <= limit:
            piece = handle.read(min(limit + 1 - size, MiB))
            if not piece:
                break
            parts.append(piece)
            size += len(piece)
    except OSError as exc:
        raise InputError(name, f"cannot read: {_why(exc)}") from None
    if size > limit:
        raise _too_large(name, limit, what, option)
    return b"".join(parts)


def _too_large(name: str, limit: int, what: str, option: str) -> InputError:
    raise_it = f" (raise it with {option})" if option else ""
    return InputError(name, f"larger than the {size_text(limit)} limit for {what}{raise_it}")


def decode(data: bytes, name: str) -> str:
    """UTF-8 text (a byte-order mark is dropped); YamlProblem at the first byte that is not."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        bad = data[exc.start]
        raise YamlProblem(name, Mark(line, column), f"not UTF-8 text (byte {bad:#04x})") from None


# -- finding case files --------------------------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    """A path named or found that holds no cases that can be read, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def case_files(paths: Sequence[str | Path]) -> Iterator[Path | str | Refused]:
    """Files named, and case files found in directories (recursively, in sorted order, following
    symbolic links), or "-" for standard input. A named path that cannot be read, and anything
    found named like a case file that is not a readable regular file, is `Refused` with why."""
    for path in paths:
        if str(path) == "-":
            yield "-"
            continue
        p = Path(path)
        try:
            mode = p.stat().st_mode
        except FileNotFoundError:
            broken = os.path.islink(p)
            yield Refused(
                str(p), "a broken symbolic link" if broken else "no such file or directory"
            )
            continue
        except (OSError, ValueError) as exc:  # too long a name, a directory not searchable ...
            reason = _why(exc) if isinstance(exc, OSError) else str(exc)
            yield Refused(str(p), f"cannot read: {reason}")
            continue
        if stat.S_ISDIR(mode):
            found = False
            for item in _search(p, set()):
                found = True
                yield item
            if not found:
                yield Refused(
                    str(p), f"no case files ({', '.join(CASE_SUFFIXES)}) in this directory"
                )
        else:
            yield p


def _search(directory: Path, open_dirs: set[tuple[int, int]]) -> Iterator[Path | Refused]:
    try:
        info = directory.stat()
        with os.scandir(directory) as found:
            entries = sorted(found, key=lambda e: e.name)
    except OSError as exc:
        yield Refused(str(directory), f"cannot read the directory: {_why(exc)}")
        return
    here = (info.st_dev, info.st_ino)
    if here in open_dirs:
        yield Refused(str(directory), "a symbolic link loop (a directory that holds itself)")
        return
    open_dirs.add(here)
    for entry in entries:
        path = Path(entry.path)
        case_like = entry.name.endswith(CASE_SUFFIXES)
        try:
            mode = entry.stat().st_mode  # follows a symbolic link
        except OSError as exc:
            if case_like or entry.is_symlink():
                broken = isinstance(exc, FileNotFoundError)
                yield Refused(str(path), "a broken symbolic link" if broken else _why(exc))
            continue
        if stat.S_ISDIR(mode):
            yield from _search(path, open_dirs)
        elif case_like and stat.S_ISREG(mode):
            yield path
        elif case_like:
            yield Refused(str(path), f"{_kind(mode)}, not a file of cases: refused, not read")
    open_dirs.discard(here)
