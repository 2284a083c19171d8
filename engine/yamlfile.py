"""YAML and JSON reading that remembers where every value came from.

PyYAML keeps the last of two equal keys silently and forgets line numbers once a document is built.
Rule authors need both: a duplicate key is an error, and every error points at file:line:column.
Mappings and sequences loaded here are plain dict and list subclasses that carry the position of
each key and item, so a pydantic error location can be turned back into a place in the file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class Mark:
    line: int  # 1-based
    column: int  # 1-based


class YamlProblem(Exception):
    """A file that is not well-formed YAML/JSON, or has a duplicate key."""

    def __init__(self, file: str, mark: Mark | None, message: str) -> None:
        self.file = file
        self.mark = mark
        self.message = message
        where = f"{file}:{mark.line}:{mark.column}" if mark else file
        super().__init__(f"{where}: {message}")


class PosDict(dict):
    """A mapping that knows where it and each of its keys and values start."""

    mark: Mark | None = None
    key_marks: dict[Any, Mark]
    value_marks: dict[Any, Mark]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_marks = {}
        self.value_marks = {}


class PosList(list):
    """A sequence that knows where it and each of its items start."""

    mark: Mark | None = None
    item_marks: list[Mark]

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.item_marks = []


def _mark(m: yaml.Mark) -> Mark:
    return Mark(m.line + 1, m.column + 1)


class _Loader(yaml.SafeLoader):
    def __init__(self, stream: str, file: str) -> None:
        super().__init__(stream)
        self.file = file
        self.duplicates: list[YamlProblem] = []


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> Any:
    mapping = PosDict()
    mapping.mark = _mark(node.start_mark)
    yield mapping
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise YamlProblem(
                loader.file, _mark(key_node.start_mark), "a mapping key must be a scalar"
            ) from None
        if key in mapping:
            first = mapping.key_marks[key]
            loader.duplicates.append(
                YamlProblem(
                    loader.file,
                    _mark(key_node.start_mark),
                    f"duplicate key {key!r} (first at line {first.line}); YAML would keep only the "
                    "last one: merge the two or rename one",
                )
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_marks[key] = _mark(key_node.start_mark)
        mapping.value_marks[key] = _mark(value_node.start_mark)


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> Any:
    seq = PosList()
    seq.mark = _mark(node.start_mark)
    yield seq
    for item in node.value:
        seq.append(loader.construct_object(item, deep=True))
        seq.item_marks.append(_mark(item.start_mark))


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def _load_all(text: str, file: str, keep_duplicates: bool = False) -> list[Any]:
    loader = _Loader(text, file)
    try:
        docs = []
        while loader.check_data():
            docs.append(loader.get_data())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(p for p in (exc.context, exc.problem) if p) or str(exc)
        raise YamlProblem(
            file, _mark(mark) if mark else None, f"not valid YAML: {message}"
        ) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(file, None, f"not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    if loader.duplicates and not keep_duplicates:
        raise loader.duplicates[0]
    return docs


def parse_yaml(text: str, file: str = "<string>", keep_duplicates: bool = False) -> Any:
    """Parse one YAML document (JSON is YAML too) into PosDict/PosList values. A duplicate key
    is an error, unless `keep_duplicates`: then the last value stands, as YAML has it (for a
    check that reports the duplicate and still reads the rest of the file)."""
    docs = _load_all(text, file, keep_duplicates)
    if len(docs) > 1:
        raise YamlProblem(file, None, f"expected one YAML document, found {len(docs)}")
    return docs[0] if docs else None


def duplicate_keys(text: str, file: str) -> list[YamlProblem]:
    """Every duplicate key in a document (parse_yaml stops at the first)."""
    loader = _Loader(text, file)
    try:
        while loader.check_data():
            loader.get_data()
    except yaml.YAMLError:
        return []
    finally:
        loader.dispose()
    return loader.duplicates


def read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise YamlProblem(str(path), None, f"cannot read: {exc}") from None
    return parse_yaml(text, str(path))


def parse_json(text: str, file: str = "<string>") -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise YamlProblem(file, Mark(exc.lineno, exc.colno), f"not valid JSON: {exc.msg}") from None


def locate(data: Any, loc: Sequence[Any]) -> Mark | None:
    """The position of the deepest value along a pydantic error location that the file knows."""
    best: Mark | None = getattr(data, "mark", None)
    current = data
    for part in loc:
        if isinstance(current, PosDict) and part in current:
            best = current.value_marks.get(part, best)
            current = current[part]
        elif isinstance(current, PosDict) and isinstance(part, str):
            # pydantic names a union member or an unknown key; an unknown key is found as itself
            if part in current.key_marks:
                best = current.key_marks[part]
            continue
        elif isinstance(current, PosList) and isinstance(part, int) and 0 <= part < len(current):
            best = current.item_marks[part]
            current = current[part]
        else:
            continue
    return best


def key_mark(data: Any, key: str) -> Mark | None:
    if isinstance(data, PosDict):
        return data.key_marks.get(key, data.mark)
    return getattr(data, "mark", None)
