"""What every command shares: the consoles, how a message is said, where the pack and the cases are,
and the exit statuses."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import errno
import io
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from ..authoring import default_cases
from ..cleantext import printable
from ..knowledge_base import KnowledgeBase, load_knowledge_base
from ..pack import MANIFEST, bundled_pack_path
from ..reading import DEFAULT_LIMITS, FILE_OPTION, InputError, decode, parse_size, read_stream
from ..scenario import read_document
from ..yamlfile import YamlProblem

EXIT_OK, EXIT_FAILED, EXIT_INPUT = 0, 1, 2

TODAY_VARIABLE = "CAVEAT_TODAY"


def today() -> dt.date:
    """The date reviews are judged against and recorded on: CAVEAT_TODAY (YYYY-MM-DD) when set,
    so that a run can be reproduced on another day, else today."""
    value = os.environ.get(TODAY_VARIABLE)
    if not value:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise Usage(f"{TODAY_VARIABLE}={value!r} is not a date like 2026-11-25") from None


def settle_streams() -> None:
    """Make the standard streams safe to use, whatever the command was started with.

    Text that standard output or error cannot encode (PYTHONIOENCODING=ascii, a C locale) is
    written as escapes (`\\u2022`), never a UnicodeEncodeError. A standard stream that was closed
    (`1>&-`: Python has None for it) gets /dev/null on its descriptor, so that no file opened later
    takes that number and is written or read as if it were the stream; the stream stays None, for
    `closed_stream` to tell."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)  # (a TextIOWrapper's)
        if reconfigure is not None and getattr(stream, "errors", None) == "strict":
            with contextlib.suppress(ValueError, io.UnsupportedOperation):
                reconfigure(errors="backslashreplace")
    for fd, stream in ((0, sys.stdin), (1, sys.stdout), (2, sys.stderr)):
        if stream is None:
            try:
                os.fstat(fd)
            except OSError:
                with contextlib.suppress(OSError):
                    devnull = os.open(os.devnull, os.O_RDWR)
                    if devnull != fd:
                        os.dup2(devnull, fd)
                        os.close(devnull)


def closed_stream(args: argparse.Namespace) -> str | None:
    """The standard stream a command needs that was closed when it started, if any: standard
    input for `-` (a scenario, or JSON Lines), standard output unless a batch writes to --out."""
    reads_stdin = getattr(args, "file", None) == "-" or "-" in (getattr(args, "paths", None) or ())
    if sys.stdin is None and reads_stdin:
        return "standard input"
    if sys.stdout is None and not getattr(args, "out", None):
        return "standard output"
    return None


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """A closed pipe (`caveat ... | head`) is for `main` to handle, as for output written
        without rich: rich would exit with status 1, which says an expectation failed."""
        self.quiet = True
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


def stdout() -> Console:
    console = _Console(highlight=False)
    if not console.is_terminal:
        # never break lines of text for a pipe or a file; tables get a fixed, generous width
        console = _Console(highlight=False, width=110, soft_wrap=True)
    return console


def stderr() -> Console:
    console = _Console(stderr=True, highlight=False)
    if not console.is_terminal:
        console = _Console(stderr=True, highlight=False, width=110, soft_wrap=True)
    return console


def say(console: Console, label: str, message: str, style: str = "bold red") -> None:
    """'label: message', the message printed as plain text (never read as rich markup)."""
    line = Text(f"{label}: ", style=style)
    line.append(printable(message, newlines=True))  # input echoed: no control character obeyed
    console.print(line)


def pack_dir(path: str | None) -> Path:
    """--pack, else ./rules when the working directory holds a pack, else the bundled pack."""
    if path is not None:
        return Path(path)
    local = Path("rules")
    return local if (local / MANIFEST).is_file() else bundled_pack_path()


def pack_to_edit(path: str | None) -> Path:
    """The pack a command that writes (new, review, release) edits: --pack, else ./rules. The
    bundled pack is never edited behind the user's back (inside an installed package it is not
    theirs to edit)."""
    if path is not None:
        return Path(path)
    local = Path("rules")
    if (local / MANIFEST).is_file():
        return local
    raise Usage(
        "no pack to edit here (no ./rules/pack.yaml): run from the directory that holds your "
        "pack's rules/, or give --pack DIR"
    )


def load_pack(path: str | None) -> KnowledgeBase:
    if path is None and pack_dir(None) == bundled_pack_path():
        return load_knowledge_base()  # the cached default
    return load_knowledge_base(pack_dir(path))


def case_paths(paths: Sequence[str] | None, kb: KnowledgeBase) -> list[Path]:
    if paths:
        return [Path(p) for p in paths]
    found = default_cases(kb.root)
    if not found:
        raise Usage("no case library found (fixtures/cases); name one")
    return found


class Usage(Exception):
    """A command cannot run as asked: say why and exit 2."""


def stopped_by(stop: KeyboardInterrupt) -> tuple[int, str]:
    """The exit status and the label of a command stopped by Ctrl-C or a signal: (130,
    "interrupted"), (143, "interrupted by SIGTERM"), ..."""
    if not isinstance(stop, Interrupted):
        return 130, "interrupted"
    if stop.signum == signal.SIGINT:
        return stop.status, "interrupted"
    return stop.status, f"interrupted by {signal.Signals(stop.signum).name}"


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP stopped the command, which exits with 128 + the signal's number
    (130, 143, 129), as a shell reports a command a signal killed."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.status = 128 + signum


class Abandon(Exception):
    """Leave the command with this exit status, discarding the output file."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def read_scenario_document(name: str, limit: int = DEFAULT_LIMITS.scenario_file) -> Any:
    """The document in a scenario file, or on standard input ("-"; JSON is YAML too), of at
    most `limit` bytes (raises YamlProblem)."""
    if name == "-":
        what = "a scenario file"
        try:
            data = read_stream(sys.stdin.buffer, limit, "<stdin>", what, FILE_OPTION)
        except InputError as exc:
            raise YamlProblem("<stdin>", None, exc.reason) from None
        return read_document("<stdin>", decode(data, "<stdin>"))
    return read_document(name, limit=limit)


def size(text: str) -> int:
    """An argparse type: a size such as 16M, 512K or 2G, in bytes."""
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


@contextlib.contextmanager
def signals_stop_the_command() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP raise `Interrupted` (a KeyboardInterrupt) in the main thread, to
    be handled as Ctrl-C always was: stop the workers, remove the temporary files, say what was
    done (a batch, a population run). The first also blocks all three in this thread and sets
    their handlers to do nothing, so that cleanup runs once and quietly however many follow: they
    stay so, for the command is about to exit. (Not SIG_IGN: Python warns of a signal that came
    while its handler was being set to SIG_IGN; nor a handler left to the interpreter, which
    resets it as it exits.)"""
    from ..workers import STOP_SIGNALS  # (here: most commands never start a worker)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    fired = False

    def stop(signum: int, frame: object) -> None:
        nonlocal fired
        fired = True
        for each in STOP_SIGNALS:
            signal.signal(each, _nothing)
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        raise Interrupted(signum)

    for signum in STOP_SIGNALS:
        signal.signal(signum, stop)
    try:
        yield
    finally:
        if not fired:
            for signum, handler in previous.items():
                if handler is not None:
                    signal.signal(signum, handler)


def _nothing(signum: int, frame: object) -> None:
    pass
