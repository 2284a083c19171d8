"""What every command shares: the consoles, how a message is said, where the pack and the cases are,
and the exit statuses."""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from ..authoring import default_cases
from ..knowledge_base import KnowledgeBase, load_knowledge_base
from ..pack import MANIFEST, bundled_pack_path
from ..scenario import read_document

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


def stdout() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:
        # never break lines of text for a pipe or a file; tables get a fixed, generous width
        console = Console(highlight=False, width=110, soft_wrap=True)
    return console


def stderr() -> Console:
    console = Console(stderr=True, highlight=False)
    if not console.is_terminal:
        console = Console(stderr=True, highlight=False, width=110, soft_wrap=True)
    return console


def say(console: Console, label: str, message: str, style: str = "bold red") -> None:
    """'label: message', the message printed as plain text (never read as rich markup)."""
    line = Text(f"{label}: ", style=style)
    line.append(message)
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


class Abandon(Exception):
    """Leave the command with this exit status, discarding the output file."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def read_scenario_document(name: str) -> Any:
    if name == "-":
        return read_document("<stdin>", sys.stdin.read())  # JSON is YAML too
    return read_document(name)
