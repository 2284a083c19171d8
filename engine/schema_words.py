"""The JSON Schema words the scenario's models add to what pydantic derives.

engine/schemas.py publishes the scenario's JSON Schema. These keywords make a validator in another
language refuse what validation here refuses (patterns for labels and ids, bounds in the words
every validator knows, a code that may be written as digits). None of it takes part in
validation, which is pydantic's, unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

_CC = r"\x00-\x1f\x7f-\x9f"  # control characters (what engine.scenario refuses in text)
# the white space strip_whitespace strips (pydantic-core trims Unicode White_Space, not U+001C-1F)
_WS = r"\t\n\x0b\x0c\r\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# A label or code: white space either side (trimmed), then text with no control character that
# starts and ends with something else than white space. ($ is exact here in Python's dialect too,
# which also matches before a final newline: a newline is white space, trimmed.)
LABEL_PATTERN = rf"^[{_WS}]*[^{_WS}{_CC}][^{_CC}]*[{_WS}]*$"
# An id (not trimmed): no control character anywhere. (?![\s\S]) is the end of the text in every
# dialect; Python's $ would let a final newline through.
ID_PATTERN = rf"^[^{_CC}]*(?![\s\S])"
_BOUNDS = {"ge": "minimum", "le": "maximum", "gt": "exclusiveMinimum", "lt": "exclusiveMaximum"}


class JsonSchema:
    """JSON Schema keywords for a type, beyond those pydantic derives from its constraints."""

    def __init__(self, **keywords: Any) -> None:
        self.keywords = keywords

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema.update(self.keywords)
        return schema


def standard_bounds(schema: dict[str, Any]) -> None:
    """The bounds of a `float | int` field in words every validator knows. pydantic writes them
    as "ge" and "le" beside the union's anyOf, which no JSON Schema validator enforces; here they
    become minimum and maximum of one JSON number (an integer is a number in JSON Schema)."""
    for option in schema.get("anyOf", []):
        bounds = {_BOUNDS[k]: option.pop(k) for k in list(option) if k in _BOUNDS}
        if not bounds:
            continue
        types = {member.get("type") for member in option.get("anyOf", [])}
        if types == {"number", "integer"} and all(len(m) == 1 for m in option["anyOf"]):
            del option["anyOf"]
            option["type"] = "number"
        option.update(bounds)


def code_may_be_digits(length: int) -> Callable[[dict[str, Any]], None]:
    """A code is text, or (as validation allows: YAML reads `code: 84757009` as a number) a
    non-negative integer of at most `length` digits, read as the code it spells."""

    def widen(schema: dict[str, Any]) -> None:
        text = {k: schema.pop(k) for k in list(schema) if k not in ("title", "description")}
        digits = {"type": "integer", "minimum": 0, "maximum": 10**length - 1}
        schema["anyOf"] = [text, digits]

    return widen
