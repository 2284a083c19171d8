"""How the authoring checks report: a problem at file:line:column, an error or a warning."""

from __future__ import annotations

from typing import Any

from ..errors import PackProblem
from ..yamlfile import Mark, PosDict, PosList


def problem(
    file: str, mark: Mark | None, message: str, code: str, severity: str = "error"
) -> PackProblem:
    return PackProblem(
        file=file,
        line=mark.line if mark else 0,
        column=mark.column if mark else 0,
        message=message,
        code=code,
        severity=severity,  # type: ignore[arg-type]
    )


def mark_of(data: Any, fallback: Mark | None = None) -> Mark | None:
    return getattr(data, "mark", None) or fallback


def item_mark(data: Any, key: str, index: int) -> Mark | None:
    """Where item `index` of the list under `key` starts, when the file kept its place."""
    if isinstance(data, PosDict) and isinstance(data.get(key), PosList):
        items = data[key]
        if index < len(items.item_marks):
            return items.item_marks[index]
    return mark_of(data)
