"""The input contract: a described patient scenario, validated strictly.

A scenario is a plain mapping (or a YAML/JSON file of the same shape). Validation is strict on
purpose: durable_rules compares loosely (the string "25" satisfies `< 30`, and True equals 1), so a
wrong type must never reach it. Every problem is reported at once, each with its field path.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from .errors import Problem, ScenarioError
from .reading import DEFAULT_LIMITS, FILE_OPTION, InputError, Limits, decode, read_limited
from .yamlfile import YamlProblem, parse_json, parse_yaml

Intent = Literal["acute", "short-term", "long-term"]
Dose = Literal["low", "standard", "high"]
Response = Literal["none", "transient", "sustained"]
CodeSystem = Literal["ICD-10-CM", "SNOMED-CT", "ATC", "RxNorm"]

INTENTS: tuple[str, ...] = get_args(Intent)
DOSES: tuple[str, ...] = get_args(Dose)
RESPONSES: tuple[str, ...] = get_args(Response)
CODE_SYSTEMS: tuple[str, ...] = get_args(CodeSystem)

MAX_AGE = 130
MAX_YEARS = 130
MAX_LINE = 20
MAX_ITEMS = 100

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _printable(text: str) -> str:
    """Text without control characters: a label or an id is one line of words, and reports echo
    it to terminals and pages, where a control character could do more than show."""
    found = _CONTROL.search(text)
    if found:
        raise ValueError(f"contains a control character (U+{ord(found[0]):04X}); remove it")
    return text


Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_printable),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class Code(_Strict):
    """A coded condition or medication, e.g. {code: G25.81, system: ICD-10-CM}."""

    code: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=40),
        AfterValidator(_printable),
    ]
    system: CodeSystem

    @field_validator("code", mode="before")
    @classmethod
    def _digits_may_be_unquoted(cls, value: Any) -> Any:
        # SNOMED CT and RxNorm codes are digits; YAML reads `code: 84757009` as a number
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return str(value)
        return value

    @property
    def display(self) -> str:
        return f"{self.code} ({self.system})"


Item = Text | Code


class Patient(_Strict):
    age: float | int | None = Field(default=None, ge=0, le=MAX_AGE, description="years")


class Therapy(_Strict):
    """The clonazepam use being considered or under way."""

    intent: Intent | None = None
    duration_years: float | int | None = Field(default=None, ge=0, le=MAX_YEARS)
    line: int | None = Field(default=None, ge=1, le=MAX_LINE)
    dose: Dose | None = None
    response: Response | None = None


class Scenario(_Strict):
    id: (
        Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_printable)]
        | None
    ) = None
    patient: Patient | None = None
    conditions: list[Item] = Field(default_factory=list, max_length=MAX_ITEMS)
    medications: list[Item] = Field(default_factory=list, max_length=MAX_ITEMS)
    therapy: Therapy | None = None

    @field_validator("conditions", "medications", mode="before")
    @classmethod
    def _items_are_a_list(cls, value: Any) -> Any:
        if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
            raise ValueError("expected a list of labels or {code, system} mappings")
        return list(value)


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("str", "Code", "float", "int", "constrained-str") or "[" in part:
            continue  # pydantic names the union member it tried; a person does not need that
        else:
            out += f".{part}" if out else str(part)
    return out


_MESSAGES = {
    "extra_forbidden": "unknown field; remove it or check its spelling",
    "string_unicode": "not valid Unicode text (it holds a lone surrogate)",
    "invalid_key": "a field name must be text",
}


def _problems(exc: ValidationError) -> list[Problem]:
    seen: dict[str, list[str]] = {}
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        path = _path(loc)
        # A list item that is neither text nor a code mapping fails once per union member.
        if (
            len(loc) >= 2
            and loc[0] in ("conditions", "medications")
            and isinstance(loc[1], int)
            and err["type"] in ("string_type", "model_type", "dict_type", "string_too_short")
        ):
            if err["type"] != "string_too_short" and isinstance(err["input"], str):
                continue  # text that failed as a label; its own error says why
            msg = (
                "expected a label (text) or a mapping {code: ..., system: ...}, got "
                f"{_kind(err['input'])}"
            )
            if err["type"] == "string_too_short":
                msg = "empty label"
            seen.setdefault(path, [])
            if msg not in seen[path]:
                seen[path].append(msg)
            continue
        message = _MESSAGES.get(err["type"], err["msg"]).removeprefix("Value error, ")
        if err["type"] == "literal_error" and path.endswith("system"):
            message += f" (known systems: {', '.join(CODE_SYSTEMS)})"
        if err["type"] in ("float_type", "int_type") and _numeric(err.get("input")):
            message += "; write the number without quotes"
        elif err["type"] in ("model_type", "list_type", "dict_type", "string_type"):
            message = f"{message}, got {_kind(err.get('input'))}"
        seen.setdefault(path, [])
        if message not in seen[path]:
            seen[path].append(message)
    # A value that is neither int nor float fails both; one message says it.
    out = []
    for path, msgs in seen.items():
        if any(other.startswith(path + ".") for other in seen):
            continue  # a mapping item: its fields' errors say more than "not a label"
        if len(msgs) > 1:
            msgs = [m for m in msgs if not m.startswith("Input should be a valid integer")]
        out.append(Problem(path=path, message="; ".join(msgs)))
    return out


def _numeric(value: Any) -> bool:
    """Text that reads as a number (then it was quoted)."""
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


def _kind(value: Any) -> str:
    """What a YAML/JSON author would call the type of a value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def parse_scenario(data: Any, source: str | None = None) -> Scenario:
    """Validate a scenario mapping. Raises ScenarioError listing every problem with its path."""
    if isinstance(data, Scenario):
        return data
    if not isinstance(data, Mapping):
        raise ScenarioError(
            [Problem(path="", message=f"a scenario is a mapping, got {type(data).__name__}")],
            source,
        )
    bad_numbers = [
        Problem(path=p, message="must be a finite number")
        for p, v in _numbers(data)
        if isinstance(v, float) and not math.isfinite(v)
    ]
    try:
        scenario = Scenario.model_validate(dict(data))
    except ValidationError as exc:
        problems = _problems(exc)
        known = {p.path for p in problems}
        problems += [p for p in bad_numbers if p.path not in known]
        raise ScenarioError(problems, source) from None
    return scenario


def _numbers(data: Mapping[str, Any]) -> list[tuple[str, Any]]:
    out = []
    for section in ("patient", "therapy"):
        sub = data.get(section)
        if isinstance(sub, Mapping):
            out += [(f"{section}.{k}", v) for k, v in sub.items()]
    return out


SCENARIO_VALUES = 10_000  # values in a scenario file's YAML (a full scenario needs under 1,000)
CASE_FILE_VALUES = 100_000  # values in a YAML case file (a few thousand cases)


def read_document(
    path: str | Path,
    text: str | None = None,
    *,
    limit: int = DEFAULT_LIMITS.scenario_file,
    what: str = "a scenario file",
    max_values: int = SCENARIO_VALUES,
) -> Any:
    """Read a YAML or JSON document, at most `limit` bytes of it; raises YamlProblem with file
    and line. JSON is read as JSON (a .json file, or text that parses as JSON), anything else as
    YAML, of at most `max_values` values. Dates are not read as dates: a scenario has none, and
    an id such as 2020-02-30 is text."""
    name = str(path)
    if text is None:
        try:
            data = read_limited(path, limit, what, FILE_OPTION)
        except InputError as exc:
            raise YamlProblem(name, None, exc.reason) from None
        text = decode(data, name)
    if name.endswith(".json"):
        return parse_json(text, name)
    if text.lstrip()[:1] in ("{", "["):  # JSON, most likely: read it at JSON's speed
        with contextlib.suppress(YamlProblem):
            return parse_json(text, name)
    hint = "; a larger set of cases belongs in JSON Lines" if max_values > SCENARIO_VALUES else ""
    return parse_yaml(text, name, dates=False, max_values=max_values, too_many=hint)


def load_scenario(path: str | Path, limits: Limits = DEFAULT_LIMITS) -> Scenario:
    """Read and validate one scenario file (YAML or JSON), of at most `limits.scenario_file`
    bytes. Raises ScenarioError for anything wrong with it."""
    try:
        data = read_document(path, limit=limits.scenario_file)
    except YamlProblem as exc:
        raise ScenarioError([Problem(path="", message=str(exc))], str(path)) from None
    return parse_scenario(data, str(path))
