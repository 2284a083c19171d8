"""ICD-10-CM, from the simple-icd-10-cm package (the April 2026 release ships inside it, offline).

The package parses its XML when imported, which takes about two seconds, so it is imported on first
use: a pack or a scenario that uses no ICD-10-CM code never pays for it.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from types import ModuleType

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


@lru_cache(maxsize=65536)
def icd_is_valid(code: str) -> bool:
    return bool(_icd().is_valid_item(normalise_icd(code)))


@lru_cache(maxsize=65536)
def icd_description(code: str) -> str | None:
    code = normalise_icd(code)
    icd = _icd()
    return icd.get_description(code) if icd.is_valid_item(code) else None


@lru_cache(maxsize=65536)
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
