"""The `when` language: a small declarative condition tree (no expressions, no eval).

A condition is a mapping with exactly one key:

    condition: <concept>                 the scenario has this condition, or one that is_a it
    condition: {is_a: <concept>, except: [<concept>, ...]}
    medication: <concept>                same, for the scenario's medications
    age: {lt: 18}                        patient.age; operators lt, lte, gt, gte, eq (several = and)
    duration_years: {gt: 3}              therapy.duration_years
    line: {gte: 3}                       therapy.line
    intent: acute | [acute, short-term]  therapy.intent is one of these
    dose: low | [...]                    therapy.dose
    response: transient | [...]          therapy.response
    all: [<condition>, ...]              every one holds
    any: [<condition>, ...]              at least one holds
    not: <condition>                     it does not hold

and a rule whose statement holds whatever the scenario says `when: always` (background).

Conditions and medications are closed-world: an item the scenario does not list is absent. Every
other fact is open-world: when the scenario does not give it, a test on it is unknown, and so may be
the whole condition (Kleene's three-valued logic); such a rule is reported as undetermined.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)

from .scenario import MAX_AGE, MAX_LINE, MAX_YEARS, Dose, Intent, Response
from .vocabulary import ConceptId

Op = Literal["lt", "lte", "gt", "gte", "eq"]
OPS: tuple[Op, ...] = ("lt", "lte", "gt", "gte", "eq")
# what each comparison of a number test means
HOLDS: dict[str, Callable[[Any, Any], bool]] = {
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
    "eq": operator.eq,
}
SYMBOL = {"lt": "<", "lte": "≤", "gt": ">", "gte": "≥", "eq": "=", "ne": "≠"}
NEGATION = {"lt": "gte", "lte": "gt", "gt": "lte", "gte": "lt", "eq": "ne", "ne": "eq"}

# Scenario facts a condition can test, with their path in the scenario.
FACT_PATHS = {
    "age": "patient.age",
    "duration_years": "therapy.duration_years",
    "line": "therapy.line",
    "intent": "therapy.intent",
    "dose": "therapy.dose",
    "response": "therapy.response",
}


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)


class ConceptQuery(_Node):
    is_a: ConceptId
    except_: list[ConceptId] = Field(default_factory=list, alias="except")


ConceptRef = ConceptId | ConceptQuery


class _ConceptTest(_Node):
    kind: ClassVar[Literal["condition", "medication"]]

    @property
    def ref(self) -> ConceptRef:
        return getattr(self, self.kind)

    @property
    def concept(self) -> str:
        ref = self.ref
        return ref if isinstance(ref, str) else ref.is_a

    @property
    def excluded(self) -> tuple[str, ...]:
        ref = self.ref
        return () if isinstance(ref, str) else tuple(ref.except_)


class HasCondition(_ConceptTest):
    kind: ClassVar[Literal["condition", "medication"]] = "condition"
    condition: ConceptRef


class HasMedication(_ConceptTest):
    kind: ClassVar[Literal["condition", "medication"]] = "medication"
    medication: ConceptRef


class Compare(_Node):
    lt: float | None = None
    lte: float | None = None
    gt: float | None = None
    gte: float | None = None
    eq: float | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> Compare:
        if not self.tests():
            raise ValueError("give at least one of lt, lte, gt, gte, eq")
        return self

    def tests(self) -> tuple[tuple[Op, float], ...]:
        return tuple((op, getattr(self, op)) for op in OPS if getattr(self, op) is not None)


class _NumberTest(_Node):
    field: ClassVar[str]
    bounds: ClassVar[tuple[float, float]]

    @property
    def compare(self) -> Compare:
        return getattr(self, self.field)

    @model_validator(mode="after")
    def _in_range(self) -> _NumberTest:
        low, high = self.bounds
        for op, value in self.compare.tests():
            if not low <= value <= high:
                raise ValueError(f"{self.field} {op} {value}: the scenario allows {low}..{high}")
        return self


class AgeTest(_NumberTest):
    field: ClassVar[str] = "age"
    bounds: ClassVar[tuple[float, float]] = (0, MAX_AGE)
    age: Compare


class DurationTest(_NumberTest):
    field: ClassVar[str] = "duration_years"
    bounds: ClassVar[tuple[float, float]] = (0, MAX_YEARS)
    duration_years: Compare


class LineTest(_NumberTest):
    field: ClassVar[str] = "line"
    bounds: ClassVar[tuple[float, float]] = (1, MAX_LINE)
    line: Compare


class _EnumTest(_Node):
    field: ClassVar[str]

    @model_validator(mode="before")
    @classmethod
    def _one_or_many(cls, data: Any) -> Any:
        # `intent: acute` is short for `intent: [acute]`
        if isinstance(data, dict) and isinstance(data.get(cls.field), str):
            data = {**data, cls.field: [data[cls.field]]}
        return data

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(getattr(self, self.field)))


class IntentTest(_EnumTest):
    field: ClassVar[str] = "intent"
    intent: Annotated[list[Intent], Field(min_length=1)]


class DoseTest(_EnumTest):
    field: ClassVar[str] = "dose"
    dose: Annotated[list[Dose], Field(min_length=1)]


class ResponseTest(_EnumTest):
    field: ClassVar[str] = "response"
    response: Annotated[list[Response], Field(min_length=1)]


class AllOf(_Node):
    all: list[Condition] = Field(min_length=1)


class AnyOf(_Node):
    any: list[Condition] = Field(min_length=1)


class NotOf(_Node):
    not_: Condition = Field(alias="not")


_TAGS = (
    "all",
    "any",
    "not",
    "condition",
    "medication",
    "age",
    "duration_years",
    "line",
    "intent",
    "dose",
    "response",
)


def _tag(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        for tag, cls in _CLASSES.items():
            if isinstance(value, cls):
                return tag
        return None
    if isinstance(value, dict) and len(value) == 1:
        (key,) = value
        return key if key in _TAGS else None
    return None


Condition = Annotated[
    Union[  # noqa: UP007 - a discriminated union needs the Union form
        Annotated[AllOf, Tag("all")],
        Annotated[AnyOf, Tag("any")],
        Annotated[NotOf, Tag("not")],
        Annotated[HasCondition, Tag("condition")],
        Annotated[HasMedication, Tag("medication")],
        Annotated[AgeTest, Tag("age")],
        Annotated[DurationTest, Tag("duration_years")],
        Annotated[LineTest, Tag("line")],
        Annotated[IntentTest, Tag("intent")],
        Annotated[DoseTest, Tag("dose")],
        Annotated[ResponseTest, Tag("response")],
    ],
    Discriminator(
        _tag,
        custom_error_type="condition_shape",
        custom_error_message=(
            "a condition is a mapping with exactly one key, one of: " + ", ".join(_TAGS)
        ),
    ),
]

_CLASSES: dict[str, type[BaseModel]] = {
    "all": AllOf,
    "any": AnyOf,
    "not": NotOf,
    "condition": HasCondition,
    "medication": HasMedication,
    "age": AgeTest,
    "duration_years": DurationTest,
    "line": LineTest,
    "intent": IntentTest,
    "dose": DoseTest,
    "response": ResponseTest,
}

AllOf.model_rebuild()
AnyOf.model_rebuild()
NotOf.model_rebuild()

Leaf = (
    HasCondition
    | HasMedication
    | AgeTest
    | DurationTest
    | LineTest
    | IntentTest
    | DoseTest
    | ResponseTest
)


def _when_tag(value: Any) -> str | None:
    return "always" if value == "always" else _tag(value)


When = Annotated[
    Union[  # noqa: UP007
        Annotated[Literal["always"], Tag("always")],
        Annotated[Condition, Tag("condition-tree")],
    ],
    Discriminator(
        lambda v: "always" if v == "always" else "condition-tree",
    ),
]


def children(node: Condition) -> tuple[Condition, ...]:
    if isinstance(node, AllOf):
        return tuple(node.all)
    if isinstance(node, AnyOf):
        return tuple(node.any)
    if isinstance(node, NotOf):
        return (node.not_,)
    return ()


def leaves(node: When) -> list[Leaf]:
    """Every leaf test of a condition tree, in order."""
    if node == "always":
        return []
    kids = children(node)
    if not kids:
        return [node]  # type: ignore[list-item]
    out: list[Leaf] = []
    for kid in kids:
        out += leaves(kid)
    return out


def when_nodes(node: Any, data: Any) -> Iterator[tuple[Any, Any]]:
    """Each node of a condition tree with the YAML data it was read from (None when unknown),
    so that a problem with a node can be reported at its line."""
    yield node, data
    if isinstance(node, AllOf | AnyOf):
        key = "all" if isinstance(node, AllOf) else "any"
        items = data.get(key) if isinstance(data, dict) else None
        for i, child in enumerate(node.all if key == "all" else node.any):
            sub = items[i] if isinstance(items, list) and i < len(items) else None
            yield from when_nodes(child, sub)
    elif isinstance(node, NotOf):
        yield from when_nodes(node.not_, data.get("not") if isinstance(data, dict) else None)


def concepts_mentioned(node: When) -> set[str]:
    out: set[str] = set()
    for leaf in leaves(node):
        if isinstance(leaf, _ConceptTest):
            out.add(leaf.concept)
            out.update(leaf.excluded)
    return out


def describe(node: When) -> str:
    """A one-line human reading of a condition, for explanations."""
    if node == "always":
        return "always"
    if isinstance(node, AllOf):
        return "(" + " and ".join(describe(c) for c in node.all) + ")"
    if isinstance(node, AnyOf):
        return "(" + " or ".join(describe(c) for c in node.any) + ")"
    if isinstance(node, NotOf):
        return "not " + describe(node.not_)
    return describe_leaf(node)  # type: ignore[arg-type]


def describe_leaf(leaf: Leaf) -> str:
    if isinstance(leaf, _ConceptTest):
        text = f"{leaf.kind} is a {leaf.concept}"
        if leaf.excluded:
            text += f" (except {', '.join(leaf.excluded)})"
        return text
    if isinstance(leaf, _NumberTest):
        return " and ".join(
            f"{FACT_PATHS[leaf.field]} {SYMBOL[op]} {value:g}" for op, value in leaf.compare.tests()
        )
    assert isinstance(leaf, _EnumTest)
    values = leaf.values
    if len(values) == 1:
        return f"{FACT_PATHS[leaf.field]} = {values[0]}"
    return f"{FACT_PATHS[leaf.field]} in [{', '.join(values)}]"
