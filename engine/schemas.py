"""The contract for callers in other languages: JSON Schema (draft 2020-12) of a scenario, the
input, and of a result, the output, derived from the pydantic models that validate and write them.

`caveat schema scenario|result` prints them, and docs/schemas/ holds copies of what it prints
(tests/test_schemas.py keeps those in step). The scenario schema refuses what validation refuses
(types, ranges, lengths, known values, unknown fields), but for a few things JSON Schema cannot
say: an integral decimal such as 2.0 is an integer to JSON Schema (validation wants 2 for a line or
an unquoted code), and white space either side of a label counts toward the schema's maxLength
while validation trims it first.

Each document's `$id` is relative (scenario.json, result.json): the project has no address of its
own to publish them at, and an invented absolute URL would look fetchable while it is not. A
relative `$id` takes its base from wherever the file is actually read (a checkout, a package, a web
server such as `caveat serve`, at /schemas/scenario.json); it is a valid 2020-12 `$id` (a URI
reference without a fragment), to be made absolute if the schemas ever get a home of their own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, get_args

from .result import Result
from .scenario import Scenario

Name = Literal["scenario", "result"]
NAMES: tuple[Name, ...] = get_args(Name)
DIALECT = "https://json-schema.org/draft/2020-12/schema"

_TITLES = {"scenario": "Caveat scenario", "result": "Caveat result"}

# Every keyword of JSON Schema 2020-12 (core, applicator, unevaluated, validation, metadata,
# format-annotation and content vocabularies): anything else in a schema object is a word no
# validator knows, so a constraint said with it would go unenforced.
KEYWORDS = frozenset(
    {
        "$schema", "$id", "$ref", "$anchor", "$dynamicRef", "$dynamicAnchor", "$vocabulary",
        "$comment", "$defs",
        "allOf", "anyOf", "oneOf", "not", "if", "then", "else", "dependentSchemas",
        "prefixItems", "items", "contains", "properties", "patternProperties",
        "additionalProperties", "propertyNames", "unevaluatedItems", "unevaluatedProperties",
        "type", "enum", "const", "multipleOf", "maximum", "exclusiveMaximum", "minimum",
        "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems",
        "uniqueItems", "maxContains", "minContains", "maxProperties", "minProperties", "required",
        "dependentRequired",
        "title", "description", "default", "deprecated", "readOnly", "writeOnly", "examples",
        "format", "contentEncoding", "contentMediaType", "contentSchema",
    }
)  # fmt: skip
_ONE = ("not", "if", "then", "else", "items", "contains", "additionalProperties")
_ONE += ("propertyNames", "unevaluatedItems", "unevaluatedProperties", "contentSchema")
_MANY = ("allOf", "anyOf", "oneOf", "prefixItems")
_NAMED = ("$defs", "properties", "patternProperties", "dependentSchemas")


def json_schema(name: Name) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a scenario ("scenario") or of a result ("result", as
    `Result.model_dump(mode="json")` and `caveat evaluate --json` write it)."""
    if name == "scenario":
        generated = Scenario.model_json_schema()
    elif name == "result":
        generated = Result.model_json_schema(mode="serialization")
    else:
        raise ValueError(f"no schema {name!r}: choose from {', '.join(NAMES)}")
    for schema in subschemas(generated):
        if isinstance(schema.get("description"), str):  # a docstring, wrapped: one line
            schema["description"] = " ".join(schema["description"].split())
    unknown = sorted(unknown_keywords(generated))
    if unknown:  # a constraint pydantic said in its own words: fix the model (see scenario.py)
        raise ValueError(f"the {name} schema holds keywords no validator knows: {unknown}")
    generated.pop("title", None)
    return {
        "$schema": DIALECT,
        "$id": f"{name}.json",
        "title": _TITLES[name],
        "description": generated.pop("description"),
        **generated,
    }


def render(name: Name) -> str:
    """The schema as `caveat schema NAME` prints it: JSON indented by 2, in the order pydantic
    gives (stable), ASCII only (the same bytes whatever the terminal's encoding), newline-ended."""
    return json.dumps(json_schema(name), indent=2, ensure_ascii=True) + "\n"


def write_schemas(directory: str | Path) -> list[Path]:
    """Write every schema into `directory` as NAME.json (what docs/schemas/ holds)."""
    out = []
    for name in NAMES:
        path = Path(directory) / f"{name}.json"
        path.write_text(render(name), encoding="utf-8")
        out.append(path)
    return out


def subschemas(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A schema and every schema inside it (definitions, properties, items, alternatives...)."""
    yield schema
    for key, value in schema.items():
        if key in _ONE and isinstance(value, dict):
            yield from subschemas(value)
        elif key in _MANY and isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    yield from subschemas(item)
        elif key in _NAMED and isinstance(value, dict):
            for item in value.values():
                if isinstance(item, dict):
                    yield from subschemas(item)


def unknown_keywords(schema: dict[str, Any]) -> set[str]:
    """The keywords in a schema (and every schema inside it) that JSON Schema 2020-12 lacks."""
    return {key for sub in subschemas(schema) for key in sub if key not in KEYWORDS}
