"""ICD-10-CM, from the simple-icd-10-cm package (the April 2026 release ships inside it, offline).

The package parses its XML when imported, which takes about two seconds, so it is imported on first
use: a pack or a scenario that uses no ICD-10-CM code never pays for it.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from types import ModuleType

# Codes remembered per function, at most (least recently used dropped first): scenarios give
# codes, so a stream of new ones only cycles through these (each function's cache stays within a
# megabyte or two).
CODES_CACHED = 4096

_ICD_SHAPE = re.compile(r"^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$")
_lock = threading.Lock()
_module: ModuleType | None = None


def _icd() -> ModuleType:
    global _module
    if _module is None:
        with _lock:
            if _module is None:
                import simple_icd_10_cm

                _module = simple_icd_10_cm
    return _module


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
    return bool(_icd().is_valid_item(normalise_icd(code)))


@lru_cache(maxsize=CODES_CACHED)
def icd_description(code: str) -> str | None:
    code = normalise_icd(code)
    icd = _icd()
    return icd.get_description(code) if icd.is_valid_item(code) else None


@lru_cache(maxsize=CODES_CACHED)
def icd_lineage(code: str) -> tuple[str, ...]:
    """The code followed by its ancestor codes, nearest first (blocks and chapters left out)."""
    code = normalise_icd(code)
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
