"""Cases: a scenario plus what must come of it. The case library in fixtures/ is made of these.

A case is a scenario mapping with two optional extra keys: `description` and `expect`. The scenario
part is validated only when the case is evaluated, so a case that expects bad input (`error: true`)
is still a well-formed case.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .casefiles import CaseEntry, parse_entry
from .errors import EngineError, Problem, ScenarioError
from .pipeline import run
from .result import Result
from .trusted import built

if TYPE_CHECKING:
    from .knowledge_base import KnowledgeBase

CASE_KEYS = ("description", "expect")


class Expect(BaseModel):
    """What a case requires of its result. Every list is checked; what is not listed is free."""

    model_config = ConfigDict(extra="forbid", strict=True)

    applies: list[str] = Field(default_factory=list, description="rules that must apply")
    not_applies: list[str] = Field(default_factory=list, description="rules that must not apply")
    caveats: dict[str, list[str]] = Field(
        default_factory=dict, description="rule -> caveat codes its statement must carry"
    )
    undetermined: list[str] = Field(
        default_factory=list, description="rules that must be undetermined"
    )
    not_covered: list[str] = Field(
        default_factory=list, description="items (as given) that must be reported not covered"
    )
    unrecognized: list[str] = Field(
        default_factory=list, description="items (as given) that must be reported unrecognised"
    )
    error: bool = Field(default=False, description="the scenario must be rejected as bad input")


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="the case id, or its file and position")
    description: str | None = None
    expect: Expect | None = None
    scenario: dict[str, Any]


def split_case(data: Any, name: str) -> Case:
    """Separate a case mapping into its scenario and its expectations."""
    if not isinstance(data, Mapping):
        raise ScenarioError(
            [Problem(path="", message=f"a case is a mapping, got {type(data).__name__}")], name
        )
    scenario = {k: v for k, v in data.items() if k not in CASE_KEYS}
    description = data.get("description")
    problems = [
        Problem(path=repr(k), message="a field name must be text")
        for k in scenario
        if not isinstance(k, str)
    ]
    if description is not None and not isinstance(description, str):
        problems.append(Problem(path="description", message="must be text"))
        description = None
    expect = None
    if data.get("expect") is not None:
        try:
            expect = Expect.model_validate(data["expect"])
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                path = "expect" + "".join(
                    f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]
                )
                msg = (
                    err["msg"]
                    if err["type"] != "extra_forbidden"
                    else ("unknown expectation; known: " + ", ".join(Expect.model_fields))
                )
                problems.append(Problem(path=path, message=msg))
    if problems:
        raise ScenarioError(problems, name)
    case_id = scenario.get("id")
    return built(  # (every value checked above)
        Case,
        {
            "name": case_id if isinstance(case_id, str) and case_id else name,
            "description": description,
            "expect": expect,
            "scenario": scenario,
        },
    )


def check_expectations(expect: Expect, result: Result) -> list[str]:
    """Each way the result falls short of the expectations: 'expected ..., got ...'."""
    applied = {s.rule: s for s in result.statements}
    undetermined = {u.rule for u in result.undetermined}
    failures: list[str] = []
    for rule in expect.applies:
        if rule not in applied:
            state = "undetermined" if rule in undetermined else "does not apply"
            failures.append(f"expected {rule} to apply; it {state}")
    for rule in expect.not_applies:
        if rule in applied:
            failures.append(f"expected {rule} not to apply; it applies")
    for rule, codes in expect.caveats.items():
        statement = applied.get(rule)
        if statement is None:
            failures.append(f"expected {rule} to apply with caveats {codes}; it does not apply")
            continue
        have = [c.code for c in statement.caveats]
        missing = [c for c in codes if c not in have]
        if missing:
            failures.append(f"expected {rule} to carry caveats {missing}; it carries {have}")
    for rule in expect.undetermined:
        if rule not in undetermined:
            state = "applies" if rule in applied else "does not apply"
            failures.append(f"expected {rule} to be undetermined; it {state}")
    for wanted, reported, name in (
        (expect.not_covered, [n.input for n in result.not_covered], "not covered"),
        (expect.unrecognized, [u.input for u in result.unrecognized], "unrecognised"),
    ):
        for item in wanted:
            if not _listed(item, reported):
                failures.append(
                    f"expected {item!r} to be reported {name}; {name}: {sorted(reported)}"
                )
    return failures


def _listed(item: str, inputs: list[str]) -> bool:
    """An item as the case names it ('I10') matches the result's input ('I10 (ICD-10-CM)')."""
    want = item.strip().casefold()
    return any(
        have.casefold() == want or have.casefold().startswith(want + " (") for have in inputs
    )


# -- running a case ------------------------------------------------------------------------------


class Outcome(BaseModel):
    """What became of one case."""

    case: str
    path: str
    line: int | None = None
    status: Literal["pass", "fail", "error", "evaluated"]
    problems: list[str] = Field(default_factory=list)
    result: Result | None = None
    notes: list[str] = Field(
        default_factory=list,
        description="what a case in another format (a FHIR Bundle) held that could not be read",
    )
    description: str | None = Field(None, description="the case's description, if it has one")
    scenario: Any = Field(
        None,
        exclude=True,
        description="the scenario as the case gave it (not validated, not written out): what a "
        "report says of the case's inputs",
    )
    rejected: bool = Field(
        False, description="the scenario was rejected as bad input, as the case expected"
    )


# Readers of cases written in other formats, added by edge packages (engine.fhir adds FHIR
# patient Bundles): each takes (knowledge base, case data, case name) and returns the case as a
# scenario mapping with notes on what it could not read, or None when the data is not its format.
CaseReader = Callable[["KnowledgeBase", Any, str], "tuple[dict[str, Any], list[str]] | None"]
READERS: list[CaseReader] = []


def inputs_line(scenario: Any) -> str:
    """A scenario in a line, for a person reading a report: "age 30 · conditions: panic
    disorder, G40.909 (ICD-10-CM) · medications: none · therapy: intent continuous, 3.5 years".
    Written from the scenario as given, whatever its shape (a case may expect it to be refused)."""
    if not isinstance(scenario, Mapping):
        return f"(not a mapping: {type(scenario).__name__})"
    parts = []
    patient = scenario.get("patient")
    age = patient.get("age") if isinstance(patient, Mapping) else None
    parts.append(f"age {_said(age)}" if age is not None else "age not given")
    for field in ("conditions", "medications"):
        items = scenario.get(field)
        if isinstance(items, list):
            listed = ", ".join(_item(i) for i in items[:8]) or "none"
            more = f" and {len(items) - 8:,} more" if len(items) > 8 else ""
            parts.append(f"{field}: {listed}{more}")
        elif items is not None:
            parts.append(f"{field}: {_said(items)}")
    therapy = scenario.get("therapy")
    if isinstance(therapy, Mapping) and therapy:
        said = ", ".join(f"{k.replace('_', ' ')} {_said(v)}" for k, v in list(therapy.items())[:6])
        parts.append(f"therapy: {said}")
    elif therapy is not None:
        parts.append(f"therapy: {_said(therapy)}")
    return " · ".join(parts)


def _item(item: Any) -> str:
    if isinstance(item, Mapping) and "code" in item:
        return f"{_said(item.get('code'))} ({_said(item.get('system'))})"
    return _said(item)


def _said(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:59] + "…"


def register_reader(reader: CaseReader) -> None:
    """Read cases of another format too (in this process and the workers it forks later); a
    reader of the same function replaces the one registered before."""
    key = getattr(reader, "func", reader)
    READERS[:] = [r for r in READERS if getattr(r, "func", r) is not key]
    READERS.append(reader)


def _converted(kb: KnowledgeBase, data: Any, name: str) -> tuple[Any, list[str]] | None:
    for reader in READERS:
        found = reader(kb, data, name)
        if found is not None:
            return found
    return None


def _outcome(plain: bool, **values: Any) -> Outcome:
    """An Outcome of values run_case made (validated only on the plain path)."""
    if plain:
        return Outcome(**values)
    return built(
        Outcome,
        {
            "case": values["case"],
            "path": values["path"],
            "line": values["line"],
            "status": values["status"],
            "problems": values.get("problems", []),
            "result": values.get("result"),
            "notes": values.get("notes", []),
            "description": values.get("description"),
            "scenario": values.get("scenario"),
            "rejected": values.get("rejected", False),
        },
    )


def run_case(
    kb: KnowledgeBase,
    entry: CaseEntry,
    include_background: bool = False,
    include_draft: bool = False,
    *,
    plain: bool = False,
) -> Outcome:
    """Evaluate one case and hold it to its expectations; never raises for bad input. With
    `plain`, the evaluation takes its plain path (see engine.pipeline.run)."""
    entry = parse_entry(entry)
    base: dict[str, Any] = {"case": entry.name, "path": entry.path, "line": entry.line}
    if entry.error is not None:
        return _outcome(plain, **base, status="error", problems=[entry.error])
    data, notes = entry.data, []
    if READERS:
        try:
            converted = _converted(kb, data, entry.name)
        except Exception as exc:  # a defect of a reader: reported on its case
            problem = f"internal error reading this case (a defect of caveat): {type(exc).__name__}"
            return _outcome(plain, **base, status="error", problems=[f"{problem}: {exc}"])
        if converted is not None:
            data, notes = converted
            base["notes"] = notes
    try:
        case = split_case(data, entry.name)
    except ScenarioError as exc:
        return _outcome(plain, **base, status="error", problems=[str(p) for p in exc.problems])
    expect = case.expect
    base["description"] = case.description
    base["scenario"] = case.scenario  # (put in words only for the cases a report shows)
    try:
        result = run(
            kb,
            case.scenario,
            include_background=include_background,
            include_draft=include_draft,
            source=entry.path,
            plain=plain,
        )
    except ScenarioError as exc:
        problems = [str(p) for p in exc.problems]
        if expect is not None and expect.error:
            return _outcome(plain, **base, status="pass", problems=problems, rejected=True)
        return _outcome(plain, **base, status="error", problems=problems)
    except EngineError as exc:  # durable_rules failed on this case: the case's error, not the run's
        problem = f"the engine failed on this case: {exc}"
        return _outcome(plain, **base, status="error", problems=[problem])
    except Exception as exc:  # a defect of ours: reported on its case, the batch goes on
        problem = f"internal error (a defect of caveat; please report it): {type(exc).__name__}"
        return _outcome(plain, **base, status="error", problems=[f"{problem}: {exc}"])
    if expect is None:
        return _outcome(plain, **base, status="evaluated", result=result)
    if expect.error:
        return _outcome(
            plain,
            **base,
            status="fail",
            result=result,
            problems=["expected the scenario to be rejected as bad input; it evaluated"],
        )
    failures = check_expectations(expect, result)
    status = "fail" if failures else "pass"
    return _outcome(plain, **base, status=status, problems=failures, result=result)
