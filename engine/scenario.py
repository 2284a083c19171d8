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
from .jsonfile import parse_json
from .reading import DEFAULT_LIMITS, FILE_OPTION, InputError, Limits, decode, read_limited
from .schema_words import ID_PATTERN, LABEL_PATTERN, JsonSchema, code_may_be_digits, standard_bounds
from .trusted import built
from .yamlfile import YamlProblem, parse_yaml

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
CODE_LENGTH = 40

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
    JsonSchema(pattern=LABEL_PATTERN),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class Code(_Strict):
    """A condition or medication given by its code in a code system, e.g. {"code": "G25.81",
    "system": "ICD-10-CM"} (restless legs syndrome). An ICD-10-CM code also means what the codes
    above it in the ICD-10-CM hierarchy mean; a code the pack does not know is reported in the
    result (not_covered or unrecognized), never ignored."""

    code: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=CODE_LENGTH),
        AfterValidator(_printable),
        JsonSchema(pattern=LABEL_PATTERN),
    ] = Field(
        description="The code as its system writes it, e.g. G25.81 (ICD-10-CM), N03AE01 (ATC), "
        "84757009 (SNOMED-CT), 8183 (RxNorm). 1 to 40 characters, no control characters; white "
        "space either side is ignored. A code of digits may also be given as a non-negative "
        "integer (84757009), read as the code it spells; a decimal number (25.81) is refused.",
        json_schema_extra=code_may_be_digits(CODE_LENGTH),
    )
    system: CodeSystem = Field(
        description="The code system the code belongs to: ICD-10-CM, SNOMED-CT, ATC or RxNorm."
    )

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
    """The patient the scenario is about, e.g. {"age": 9}. A value not given is unknown: a rule
    that needs it is reported undetermined, never taken as false."""

    age: float | int | None = Field(
        default=None,
        ge=0,
        le=MAX_AGE,
        description="Age in years, from 0 to 130; a fraction is allowed (e.g. 9, or 1.5 for "
        "eighteen months). null or absent: unknown.",
        json_schema_extra=standard_bounds,
    )


class Therapy(_Strict):
    """The clonazepam use being considered or under way, e.g. {"intent": "long-term", "line": 3}.
    Every field is optional; a value not given is unknown: a rule that needs it is reported
    undetermined, never taken as false."""

    intent: Intent | None = Field(
        default=None,
        description="How long the use is meant to last: acute, short-term or long-term. null "
        "or absent: unknown.",
    )
    duration_years: float | int | None = Field(
        default=None,
        ge=0,
        le=MAX_YEARS,
        description="How long the use is planned to last, or has lasted so far, in years, from 0 "
        "to 130; a fraction is allowed (e.g. 2, or 0.5 for six months). null or absent: unknown.",
        json_schema_extra=standard_bounds,
    )
    line: int | None = Field(
        default=None,
        ge=1,
        le=MAX_LINE,
        description="The line of therapy at which clonazepam is considered: a whole number from "
        "1 (first-line) to 20, e.g. 3 when two other treatments came first. null or absent: "
        "unknown.",
    )
    dose: Dose | None = Field(
        default=None,
        description="The dose level: low, standard or high. null or absent: unknown.",
    )
    response: Response | None = Field(
        default=None,
        description="The response observed so far: none, transient or sustained. null or absent: "
        "unknown.",
    )


class Scenario(_Strict):
    """A described patient scenario, the input of an evaluation, e.g. {"id": "case-17",
    "patient": {"age": 9}, "conditions": ["restless legs syndrome"], "medications":
    ["phenytoin"], "therapy": {"line": 3}}. Every field is optional. Validation is strict: an
    unknown field is refused, and so is a value of the wrong type ("25" is not a number, true is
    not 1); every problem is reported at once, with its path, and nothing is evaluated."""

    id: (
        Annotated[
            str,
            StringConstraints(min_length=1, max_length=200),
            AfterValidator(_printable),
            JsonSchema(pattern=ID_PATTERN),
        ]
        | None
    ) = Field(
        default=None,
        description="An identifier of your choosing, returned as the result's scenario_id, e.g. "
        "case-17: 1 to 200 characters, no control characters (kept as given, white space "
        "included). null or absent: none.",
    )
    patient: Patient | None = Field(
        default=None, description="The patient (their age). null or absent: nothing known."
    )
    conditions: list[Item] = Field(
        default_factory=list,
        max_length=MAX_ITEMS,
        description="What the patient has or is being treated for: up to 100 items, each a name "
        "(a label or synonym the pack knows; case, spacing and hyphens are ignored, e.g. "
        '"restless legs syndrome" or "RLS"; 1 to 200 characters, no control characters, white '
        'space either side ignored) or a code (e.g. {"code": "G25.81", "system": "ICD-10-CM"}). '
        "An item the pack does not recognise is reported in the result, never ignored. Absent: "
        "an empty list.",
    )
    medications: list[Item] = Field(
        default_factory=list,
        max_length=MAX_ITEMS,
        description="The patient's current medications other than clonazepam: up to 100 items, "
        'each a name (e.g. "phenytoin" or "Valium"; as for conditions) or a code (e.g. '
        '{"code": "8183", "system": "RxNorm"}). Absent: an empty list.',
    )
    therapy: Therapy | None = Field(
        default=None,
        description="The clonazepam use being considered or under way. null or absent: nothing "
        "known.",
    )

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
                f"{kind_of(err['input'])}"
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
            message = f"{message}, got {kind_of(err.get('input'))}"
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


def kind_of(value: Any, containers: tuple[str, str] = ("a mapping", "a list")) -> str:
    """What an author would call the type of a value: YAML's words for its containers by
    default, others (JSON's "an object", "an array") where the input is read as that."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping):
        return containers[0]
    if isinstance(value, list | tuple):
        return containers[1]
    return type(value).__name__


def parse_scenario(data: Any, source: str | None = None, *, plain: bool = False) -> Scenario:
    """Validate a scenario mapping. Raises ScenarioError listing every problem with its path.

    A scenario of the common shape is checked in plain Python (`checked`); anything else, and
    every invalid scenario, goes through pydantic, whose problems are the ones reported. With
    `plain`, pydantic validates every scenario (the path the fast one is tested against)."""
    if isinstance(data, Scenario):
        return data
    if not plain:
        fast = checked(data)
        if fast is not None:
            return fast
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


# -- the fast check ------------------------------------------------------------------------------
# Validation by pydantic costs more than the matching. Most scenarios are plain dicts of the usual
# shape, and for those the checks below are exactly pydantic's; whatever they are not sure of
# (another mapping type, a str subclass, an invalid value of any kind) they leave to pydantic,
# which then also words the problems. tests/test_fast_path.py holds the two to the same answers.

_FIELDS = frozenset(Scenario.model_fields)
_PATIENT = frozenset(Patient.model_fields)
_THERAPY = frozenset(Therapy.model_fields)
_CODE = frozenset(Code.model_fields)
_SYSTEMS = frozenset(CODE_SYSTEMS)
_CHOICES = {
    "intent": frozenset(INTENTS),
    "dose": frozenset(DOSES),
    "response": frozenset(RESPONSES),
}
_UNFIT = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")  # control characters, lone surrogates
_LARGEST_CODE = 10**CODE_LENGTH


class _Unsure(Exception):
    """The fast check cannot vouch for a value: pydantic decides."""


def _text(value: Any, longest: int) -> str:
    if type(value) is not str or _UNFIT.search(value):
        raise _Unsure
    value = value.strip()  # (the white space pydantic trims, control characters aside)
    if not 0 < len(value) <= longest:
        raise _Unsure
    return value


def _number(value: Any, low: int, high: int) -> float | int | None:
    kind = type(value)
    if value is None or (
        (kind is int or (kind is float and math.isfinite(value))) and low <= value <= high
    ):
        return value  # type: ignore[no-any-return]
    raise _Unsure


def _items(values: Any) -> list[Any]:
    if (type(values) is not list and type(values) is not tuple) or len(values) > MAX_ITEMS:
        raise _Unsure
    out: list[Any] = []
    for value in values:
        if type(value) is str:
            out.append(_text(value, 200))
            continue
        if type(value) is not dict or value.keys() != _CODE:
            raise _Unsure
        system = value["system"]
        if type(system) is not str or system not in _SYSTEMS:
            raise _Unsure
        code = value["code"]
        if type(code) is int and 0 <= code < _LARGEST_CODE:
            code = str(code)
        out.append(built(Code, {"code": _text(code, CODE_LENGTH), "system": system}))
    return out


def checked(data: Any) -> Scenario | None:
    """The scenario, when `data` is a plain dict that pydantic would accept as it is; None when
    pydantic has to decide (the scenario may still be valid)."""
    if type(data) is not dict or not _FIELDS.issuperset(data):
        return None
    try:
        scenario_id = data.get("id")
        if scenario_id is not None and (
            type(scenario_id) is not str
            or not 0 < len(scenario_id) <= 200
            or _UNFIT.search(scenario_id)
        ):
            return None
        patient = data.get("patient")
        if patient is not None:
            if type(patient) is not dict or not _PATIENT.issuperset(patient):
                return None
            patient = built(Patient, {"age": _number(patient.get("age"), 0, MAX_AGE)})
        therapy = data.get("therapy")
        if therapy is not None:
            if type(therapy) is not dict or not _THERAPY.issuperset(therapy):
                return None
            for name, choices in _CHOICES.items():
                value = therapy.get(name)
                if value is not None and (type(value) is not str or value not in choices):
                    return None
            line = therapy.get("line")
            if line is not None and (type(line) is not int or not 1 <= line <= MAX_LINE):
                return None
            therapy = built(
                Therapy,
                {
                    "intent": therapy.get("intent"),
                    "duration_years": _number(therapy.get("duration_years"), 0, MAX_YEARS),
                    "line": line,
                    "dose": therapy.get("dose"),
                    "response": therapy.get("response"),
                },
            )
        conditions = _items(data.get("conditions", ()))
        medications = _items(data.get("medications", ()))
    except _Unsure:
        return None
    return built(
        Scenario,
        {
            "id": scenario_id,
            "patient": patient,
            "conditions": conditions,
            "medications": medications,
            "therapy": therapy,
        },
    )


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
