"""Models made from values the engine has already checked, without validating them again.

Validation is what the input contract is for: a scenario from outside is checked field by field.
What the engine makes itself (a result from a compiled pack, a scenario that passed the fast
check of engine.scenario) is right by construction, and validating it again cost more than half
of an evaluation. `built` makes such a model the way pydantic's `model_construct` does, without
its per-field bookkeeping: the values are taken as given, in the order the model declares its
fields (its JSON and `model_dump` follow that order either way).

The property tests in tests/test_fast_path.py hold every model made here to the one validation
would make: equal `model_dump()` and equal JSON, on generated scenarios and the case library.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

_set = object.__setattr__
_ALL: dict[type, set[str]] = {}


def built(cls: type[M], values: dict[str, Any]) -> M:
    """An instance of `cls` holding `values` (every field of it, in its declared order), not
    validated. Only for values the engine made or checked itself."""
    model = cls.__new__(cls)
    _set(model, "__dict__", values)
    # every field is set: one set per class, shared (pydantic never changes a model's set of
    # fields in place: model_copy copies it first, and these models are frozen)
    fields = _ALL.get(cls)
    if fields is None:
        fields = _ALL[cls] = set(cls.model_fields)
    _set(model, "__pydantic_fields_set__", fields)
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model
