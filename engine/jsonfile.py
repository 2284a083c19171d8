"""JSON reading as strict as the YAML reading of engine.yamlfile: a duplicate key is an error, and
so are nesting deeper than MAX_DEPTH and numbers too long to read; every error names its place.
Records of a batch are read by orjson where that is sure to give the same value.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from .yamlfile import MAX_DEPTH, Mark, YamlProblem, position


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different (json keeps the last of two silently)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


_JSON = json.JSONDecoder(object_pairs_hook=_unique)


def parse_json(text: str, file: str = "<string>", line: int = 1) -> Any:
    """Parse JSON as strictly as YAML is read here: a duplicate key is an error, and so are
    nesting deeper than MAX_DEPTH and numbers too long to read. `line` is the line of the
    text's start in its file (for a JSON Lines record)."""
    try:
        value = _JSON.decode(text)
    except json.JSONDecodeError as exc:
        mark = Mark(exc.lineno + line - 1, exc.colno)
        raise YamlProblem(file, mark, f"not valid JSON: {exc.msg}") from None
    except _DuplicateKey as exc:
        found = re.search(
            rf"{re.escape(json.dumps(exc.key))}\s*:.*?{re.escape(json.dumps(exc.key))}\s*:",
            text,
            re.DOTALL,
        )
        mark = None
        if found:
            second = position(text, found.end() - 1)
            mark = Mark(second.line + line - 1, second.column)
        raise YamlProblem(
            file,
            mark,
            f"duplicate key {exc.key!r}; JSON readers would keep only the last one: merge the "
            "two or rename one",
        ) from None
    except RecursionError:
        raise YamlProblem(
            file, Mark(line, 1), f"not valid here: nested more than {MAX_DEPTH} levels deep"
        ) from None
    except ValueError:  # a number with more digits than Python converts (4,300)
        raise YamlProblem(
            file, Mark(line, 1), "not valid here: a number with more than 4,300 digits"
        ) from None
    if too_deep(value):
        raise YamlProblem(file, Mark(line, 1), f"nested more than {MAX_DEPTH} levels deep")
    return value


def parse_json_quickly(data: bytes | str) -> Any:
    """A JSON document parsed by orjson, when that is sure to be what `parse_json` would give;
    otherwise `UNSURE` (then `parse_json` parses it, and words what is wrong with it).

    orjson refuses what json accepts beyond the standard (NaN, lone surrogates, integers past 64
    bits), so on any refusal the strict reader decides. It keeps the last of two equal keys,
    where `parse_json` refuses them: every member of an object is written with one colon outside
    strings, so a document whose objects hold as many members as it has colons cannot have lost
    one to a duplicate (a colon inside a string, as in "10:30", leaves it to the strict reader).
    An integer of 19 digits or more may be past 64 bits, which orjson reads as a float.
    """
    if (_LONG_DIGITS if isinstance(data, bytes) else _LONG_DIGITS_TEXT).search(data):
        return UNSURE
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return UNSURE
    members = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is dict:
            members += len(item)
            children: Any = item.values()
        elif kind is list:
            children = item
        else:
            continue
        if depth > MAX_DEPTH:
            return UNSURE
        stack.extend((c, depth + 1) for c in children if type(c) is dict or type(c) is list)
    colons = data.count(b":" if isinstance(data, bytes) else ":")
    return value if members == colons else UNSURE


UNSURE = object()
_LONG_DIGITS = re.compile(rb"[0-9]{19}")
_LONG_DIGITS_TEXT = re.compile(r"[0-9]{19}")


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether mappings and lists nest more than `limit` levels in a value (without recursion)."""
    if not isinstance(value, dict | list):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False
