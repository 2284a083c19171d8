"""ICD-10-CM, from the simple-icd-10-cm package (the April 2026 release ships inside it, offline).

The package parses its XML when imported, which takes about two seconds. What evaluation needs of
it (is a code valid, its description, the categories above it) is therefore kept in an index: a
small SQLite file written once, on first use, under the cache directory (`CAVEAT_CACHE_DIR`, else
`$XDG_CACHE_HOME/caveat`, else `~/.cache/caveat`), named after the package's version, so a
later start looks codes up without importing the package at all. Where no index can be written
(a read-only home, a full disk), the package is imported as before: slower, never wrong. What only
authoring asks (inclusion terms, Excludes1 notes) always comes from the package itself.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import tempfile
import threading
from functools import lru_cache
from pathlib import Path
from types import ModuleType

# Codes remembered per function, at most (least recently used dropped first): scenarios give
# codes, so a stream of new ones only cycles through these (each function's cache stays within a
# megabyte or two).
CODES_CACHED = 4096
INDEX_FORMAT = 2  # bumped when the index's tables change: an old file is then not read

_ICD_SHAPE = re.compile(r"^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$")
_lock = threading.Lock()  # held while the package is imported or the index written
_module: ModuleType | None = None
_index_path: Path | bool | None = False  # False: not looked for yet; None: none can be had
_local = threading.local()  # this thread's connection to the index, with the process it is of


def _icd() -> ModuleType:
    if _module is None:
        with _lock:
            return _imported()
    return _module


def _imported() -> ModuleType:
    """The package, imported if need be (with _lock held)."""
    global _module
    if _module is None:
        import simple_icd_10_cm

        _module = simple_icd_10_cm
    return _module


def cache_dir() -> Path:
    """Where Caveat keeps what it works out once (the ICD-10-CM index)."""
    chosen = os.environ.get("CAVEAT_CACHE_DIR")
    if chosen:
        return Path(chosen)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "caveat"


def _package_version() -> str:
    from importlib import metadata

    return metadata.version("simple-icd-10-cm")


def index_path() -> Path:
    """The index file for the installed simple-icd-10-cm (it need not exist yet)."""
    return cache_dir() / f"icd10cm-{_package_version()}-index{INDEX_FORMAT}.sqlite"


def build_index(path: Path, icd: ModuleType) -> None:
    """Write the index of the package `icd` to `path`, atomically: a file is either whole or
    absent, whatever stops the writing (a temporary file is renamed into place). Raises OSError
    where the directory cannot be written, before the package is read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        rows = []
        for code in dict.fromkeys(icd.get_all_codes(True)):  # (a block may share a category's code)
            # The categories above the code, as the package lists them: where a block has its
            # category's code (B10), that code comes twice, and is kept twice.
            above = [a for a in icd.get_ancestors(code) if icd.is_category_or_subcategory(a)]
            rows.append((code, " ".join(above), icd.get_description(code)))
        with contextlib.closing(sqlite3.connect(tmp)) as db:
            db.execute("CREATE TABLE code (code TEXT PRIMARY KEY, above TEXT, description TEXT)")
            db.execute("CREATE TABLE meta (rows INTEGER)")
            db.executemany("INSERT INTO code VALUES (?, ?, ?)", rows)
            db.execute("INSERT INTO meta VALUES (?)", (len(rows),))
            db.commit()
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


class _LazyPackage:
    """The package, imported on first use (with _lock held): build_index finds out whether it
    can write before it reads the package, two seconds spared where it cannot."""

    def __getattr__(self, name: str) -> object:
        return getattr(_imported(), name)


def _open(path: Path) -> sqlite3.Connection | None:
    """A read-only connection to a whole index, or None (absent, cut short, or not an index)."""
    if not path.is_file():
        return None
    try:
        db = sqlite3.connect(f"{path.as_uri()}?mode=ro&immutable=1", uri=True,
                             check_same_thread=False)  # fmt: skip
        ((rows,),) = db.execute("SELECT rows FROM meta").fetchall()
        ((count,),) = db.execute("SELECT count(*) FROM code").fetchall()
    except (sqlite3.Error, ValueError):
        return None
    if rows != count:
        db.close()
        return None
    return db


def _find_index() -> Path | None:
    """The index file, written first if need be; None where it cannot be had."""
    global _index_path
    if _index_path is False:
        with _lock:
            if _index_path is False:
                found: Path | None = None
                with contextlib.suppress(OSError, sqlite3.Error):
                    path = index_path()
                    db = _open(path)
                    if db is None:
                        build_index(path, _LazyPackage())
                        db = _open(path)
                    if db is not None:
                        db.close()
                        found = path
                _index_path = found
    return _index_path  # type: ignore[return-value]


def _db() -> sqlite3.Connection | None:
    """This thread's connection to the index (a process forked with one opens its own)."""
    mine = getattr(_local, "db", None)
    if mine is not None and mine[0] == os.getpid():
        return mine[1]
    path = _find_index()
    if path is None:
        return None
    db = _open(path)
    if db is None:  # removed or damaged since: the package from now on
        global _index_path
        _index_path = None
        return None
    _local.db = (os.getpid(), db)
    return db


def _row(code: str) -> tuple[str, str] | None:
    """(the categories above it, space-separated; its description) of a valid code, from the
    index; None for an invalid one. Raises LookupError where there is no index."""
    db = _db()
    if db is None:
        raise LookupError(code)
    found = db.execute("SELECT above, description FROM code WHERE code = ?", (code,)).fetchone()
    return found


def normalise_icd(code: str) -> str:
    """Upper-case and put the dot where ICD-10-CM has it (G40A09 -> G40.A09)."""
    code = code.strip().upper()
    if "." not in code and len(code) > 3:
        code = code[:3] + "." + code[3:]
    return code


def looks_like_icd(code: str) -> bool:
    return bool(_ICD_SHAPE.match(code.strip().upper()))


@lru_cache(maxsize=CODES_CACHED)
def icd_is_valid(code: str) -> bool:
    code = normalise_icd(code)
    with contextlib.suppress(LookupError):
        return _row(code) is not None
    return bool(_icd().is_valid_item(code))


@lru_cache(maxsize=CODES_CACHED)
def icd_description(code: str) -> str | None:
    code = normalise_icd(code)
    with contextlib.suppress(LookupError):
        row = _row(code)
        return row[1] if row is not None else None
    icd = _icd()
    return icd.get_description(code) if icd.is_valid_item(code) else None


@lru_cache(maxsize=CODES_CACHED)
def icd_lineage(code: str) -> tuple[str, ...]:
    """The code followed by its ancestor codes, nearest first (blocks and chapters left out)."""
    code = normalise_icd(code)
    with contextlib.suppress(LookupError):
        row = _row(code)
        return (code, *row[0].split()) if row is not None else ()
    icd = _icd()
    if not icd.is_valid_item(code):
        return ()
    return (code, *(a for a in icd.get_ancestors(code) if icd.is_category_or_subcategory(a)))


def icd_nearest_valid(code: str) -> str | None:
    """The longest valid prefix of an invalid code, as a hint (G40.A99 -> G40.A)."""
    code = normalise_icd(code)
    for end in range(len(code) - 1, 2, -1):
        candidate = code[:end].rstrip(".")
        if icd_is_valid(candidate):
            return candidate
    return None


@lru_cache(maxsize=CODES_CACHED)
def icd_inclusion_terms(code: str) -> tuple[str, ...]:
    """The code's own inclusion terms (ICD-10-CM's "Inclusion term(s)")."""
    code = normalise_icd(code)
    icd = _icd()
    return tuple(icd.get_inclusion_term(code)) if icd.is_valid_item(code) else ()


@lru_cache(maxsize=CODES_CACHED)
def icd_excludes1(code: str) -> tuple[tuple[str, str], ...]:
    """(where, note) of every Excludes1 note that applies to a code: its own and those of the
    categories, blocks and chapters above it (a note there applies to every code below)."""
    code = normalise_icd(code)
    icd = _icd()
    if not icd.is_valid_item(code):
        return ()
    out: list[tuple[str, str]] = []
    for where in (code, *icd.get_ancestors(code)):
        out += [(where, note) for note in icd.get_excludes1(where)]
    return tuple(out)


_REFERENCE = re.compile(
    r"\b([A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?)(\.-|-(?!\s*[A-Z]))?"
    r"(?:\s*-\s*([A-Z][0-9][0-9A-Z])(?:\.?-)?)?"
)


def code_references(note: str) -> list[tuple[str, str | None]]:
    """The codes an Excludes note refers to, in the parentheses ICD-10-CM puts them in:
    ("G40", None) for "(G40.-)", ("F30", "F39") for a range "(F30-F39)"."""
    refs: list[tuple[str, str | None]] = []
    for group in re.findall(r"\(([^()]*)\)", note):
        for match in _REFERENCE.finditer(group.upper()):
            refs.append((match.group(1), match.group(3)))
    return refs


def icd_within(code: str, reference: tuple[str, str | None]) -> bool:
    """Whether a code is the referenced code, below it, or in the referenced range."""
    code = normalise_icd(code)
    start, end = reference
    if end is not None:
        return start[:3] <= code[:3] <= end[:3]
    start = normalise_icd(start)
    return code == start or code.startswith(start + ("." if len(start) == 3 else ""))
