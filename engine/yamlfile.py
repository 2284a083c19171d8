"""YAML reading that remembers where every value came from (JSON: engine.jsonfile).

PyYAML keeps the last of two equal keys silently and forgets line numbers once a document is built.
Rule authors need both: a duplicate key is an error, and every error points at file:line:column.
Mappings and sequences loaded here are plain dict and list subclasses that carry the position of
each key and item, so a pydantic error location can be turned back into a place in the file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
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


MAX_DEPTH = 64  # mappings and lists nested in one document (a scenario needs four)
MAX_ALIAS_VALUES = 100_000  # values that aliases may add to a document, once expanded
MAX_NUMBER_LENGTH = 100  # characters of a number written in YAML
# Values (scalars, mappings and lists) in one document, as written: pure-Python YAML costs some
# 30 microseconds and 1 KB of memory a value, so this bounds a document's cost to seconds.
MAX_VALUES = 100_000

MERGE_TAG = "tag:yaml.org,2002:merge"
_CORE = "tag:yaml.org,2002:"


class _Resolver(yaml.resolver.BaseResolver):
    """YAML 1.2's core schema, not PyYAML's YAML 1.1 one: `010` is ten (not eight), `1:30` is
    text (not ninety), `yes`, `no`, `on` and `off` are text. Merge keys (`<<`) still work."""


def _implicit(tag: str, pattern: str, first: str) -> None:
    _Resolver.add_implicit_resolver(_CORE + tag, re.compile(pattern), list(first))


_implicit("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF")
_implicit("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789")
_implicit(
    "float",
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
    "-+0123456789.",
)
_implicit("null", r"^(?:~|null|Null|NULL|)$", "~nN")
_Resolver.add_implicit_resolver(_CORE + "null", re.compile(r"^$"), [""])
_implicit("merge", r"^(?:<<)$", "<")


class _DatedResolver(_Resolver):
    """The core schema and dates (2026-11-25), as pack files write their reviews."""


_DatedResolver.add_implicit_resolver(
    _CORE + "timestamp",
    re.compile(
        r"^(?:[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}"
        r"(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)?)$"
    ),
    list("0123456789"),
)


class _Constructor(yaml.constructor.SafeConstructor):
    """Plain data only: text, numbers, true/false, null, mappings and lists (and dates in pack
    files). A value that cannot be what its tag says is a problem at its place in the file."""

    yaml_constructors: dict[Any, Any] = {}  # noqa: RUF012 (PyYAML's registry, filled below)

    file: str

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (YamlProblem, yaml.YAMLError):
            raise
        except Exception as exc:  # a tag the value cannot be read as (!!bool x, !!seq {a: 1})
            tag = str(node.tag).replace(_CORE, "!!")
            raise YamlProblem(
                self.file,
                _mark(node.start_mark),
                f"cannot read this value as {tag}"
                + (f": {exc}" if isinstance(exc, ValueError) and str(exc) else ""),
            ) from None

    def construct_int(self, node: yaml.ScalarNode) -> int:
        text = _number_text(self, node).replace("_", "")
        sign = -1 if text.startswith("-") else 1
        text = text.lstrip("+-")
        if text.startswith("0o"):
            return sign * int(text[2:], 8)
        if text.startswith("0x"):
            return sign * int(text[2:], 16)
        return sign * int(text, 10)

    def construct_float(self, node: yaml.ScalarNode) -> float:
        text = _number_text(self, node).replace("_", "").lower()
        if text.lstrip("+-") == ".inf":
            return -math.inf if text.startswith("-") else math.inf
        if text == ".nan":
            return math.nan
        return float(text)

    def refuse(self, node: yaml.Node) -> Any:
        raise YamlProblem(
            self.file,
            _mark(node.start_mark),
            f"the tag {node.tag.replace(_CORE, '!!')} is not supported here: write plain text, "
            "numbers, true/false, mappings and lists",
        )


def _number_text(loader: _Constructor, node: yaml.ScalarNode) -> str:
    text = str(loader.construct_scalar(node)).strip()
    if len(text) > MAX_NUMBER_LENGTH:
        raise YamlProblem(
            loader.file,
            _mark(node.start_mark),
            f"a number {len(text)} characters long; numbers here have at most {MAX_NUMBER_LENGTH}",
        )
    return text


for _tag, _make in (
    ("null", yaml.constructor.SafeConstructor.construct_yaml_null),
    ("bool", yaml.constructor.SafeConstructor.construct_yaml_bool),
    ("int", _Constructor.construct_int),
    ("float", _Constructor.construct_float),
    ("str", yaml.constructor.SafeConstructor.construct_yaml_str),
    ("timestamp", yaml.constructor.SafeConstructor.construct_yaml_timestamp),
):
    _Constructor.add_constructor(_CORE + _tag, _make)
for _tag in ("binary", "omap", "pairs", "set"):
    _Constructor.add_constructor(_CORE + _tag, _Constructor.refuse)
_Constructor.add_constructor(None, _Constructor.refuse)


class _Loader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    yaml.composer.Composer,
    _Constructor,
    _Resolver,
):
    """Reads one file's YAML, bounded: at most MAX_DEPTH levels of nesting, and aliases that add
    at most MAX_ALIAS_VALUES values once expanded (a 'billion laughs' document is refused while
    it is composed, before anything walks it), none of them referring to a node that holds it."""

    def __init__(self, stream: str, file: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        _Constructor.__init__(self)
        _Resolver.__init__(self)
        self.file = file
        self.duplicates: list[YamlProblem] = []
        self.depth = 0
        self.values = 0  # values composed in this document, as written
        self.max_values = MAX_VALUES
        self.too_many = ""  # what to do about more values than max_values
        self.sizes: dict[int, int] = {}  # node -> values it holds, aliases expanded
        self.explicit: dict[int, int] = {}  # mapping node -> its pairs written out (not merged)

    def compose_document(self) -> Any:
        self.values = 0
        self.sizes.clear()
        self.explicit.clear()
        return super().compose_document()

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            node = super().compose_node(parent, index)
            if id(node) not in self.sizes:
                raise YamlProblem(
                    self.file,
                    _mark(event.start_mark),
                    f"the alias *{event.anchor} refers to a value that holds it",
                )
            return node
        start = self.peek_event().start_mark
        level = 0 if self.check_event(yaml.ScalarEvent) else 1  # mappings and lists nest
        self.depth += level
        if self.depth > MAX_DEPTH:
            raise YamlProblem(self.file, _mark(start), f"nested more than {MAX_DEPTH} levels deep")
        try:
            node = super().compose_node(parent, index)
        finally:
            self.depth -= level
        self.values += 1
        if self.values > self.max_values:
            raise YamlProblem(
                self.file,
                _mark(start),
                f"more than {self.max_values:,} values in one document{self.too_many}",
            )
        if isinstance(node, yaml.SequenceNode):
            size = 1 + sum(self.sizes.get(id(item), 1) for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            size = 1 + sum(
                self.sizes.get(id(k), 1) + self.sizes.get(id(v), 1) for k, v in node.value
            )
            self.explicit[id(node)] = sum(1 for k, _ in node.value if k.tag != MERGE_TAG)
        else:
            size = 1
        if size > self.values + MAX_ALIAS_VALUES:
            raise YamlProblem(
                self.file,
                _mark(start),
                f"aliases here expand to {size:,} values; at most {MAX_ALIAS_VALUES:,} may be "
                "added by aliases",
            )
        self.sizes[id(node)] = size
        return node


class _DatedLoader(_Loader, _DatedResolver):
    pass


def _shape(loader: _Loader, node: yaml.Node, kind: type, name: str) -> None:
    if not isinstance(node, kind):
        raise YamlProblem(
            loader.file,
            _mark(node.start_mark),
            f"the tag {str(node.tag).replace(_CORE, '!!')} needs {name} here",
        )


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> Any:
    _shape(loader, node, yaml.MappingNode, "a mapping")
    mapping = PosDict()
    mapping.mark = _mark(node.start_mark)
    yield mapping
    explicit = loader.explicit.get(id(node))
    loader.flatten_mapping(node)
    # Pairs merged in (`<<: *base`) come first; a key written out may override one of them.
    merged = len(node.value) - (len(node.value) if explicit is None else explicit)
    written: set[Any] = set()
    for i, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise YamlProblem(
                loader.file,
                _mark(key_node.start_mark),
                f"a key must be text, got {_what(key)}; put it in quotes",
            )
        if i >= merged:
            if key in written:
                first = mapping.key_marks[key]
                loader.duplicates.append(
                    YamlProblem(
                        loader.file,
                        _mark(key_node.start_mark),
                        f"duplicate key {key!r} (first at line {first.line}); YAML would keep "
                        "only the last one: merge the two or rename one",
                    )
                )
            written.add(key)
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_marks[key] = _mark(key_node.start_mark)
        mapping.value_marks[key] = _mark(value_node.start_mark)


def _what(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"true/false ({value!r})"
    if isinstance(value, int | float):
        return f"a number ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> Any:
    _shape(loader, node, yaml.SequenceNode, "a list")
    seq = PosList()
    seq.mark = _mark(node.start_mark)
    yield seq
    for item in node.value:
        seq.append(loader.construct_object(item, deep=True))
        seq.item_marks.append(_mark(item.start_mark))


_Constructor.add_constructor(_CORE + "map", _construct_mapping)
_Constructor.add_constructor(_CORE + "seq", _construct_sequence)


def _load_all(
    text: str,
    file: str,
    dates: bool = True,
    max_values: int = MAX_VALUES,
    too_many: str = "",
) -> tuple[list[Any], list[YamlProblem]]:
    """The documents in a text, and the duplicate keys found in them."""
    loader: _Loader | None = None
    try:
        loader = (_DatedLoader if dates else _Loader)(text, file)
        loader.max_values, loader.too_many = max_values, too_many
        docs = []
        while loader.check_data():
            docs.append(loader.get_data())
    except yaml.reader.ReaderError as exc:
        character = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise YamlProblem(
            file,
            position(text, exc.position),
            f"not valid YAML: the character U+{character:04X} is not allowed (a control "
            "character); remove it",
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(p for p in (exc.context, exc.problem) if p) or str(exc)
        raise YamlProblem(
            file, _mark(mark) if mark else None, f"not valid YAML: {message}"
        ) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(file, None, f"not valid YAML: {exc}") from None
    except RecursionError:  # a backstop: MAX_DEPTH refuses deep nesting long before this
        raise YamlProblem(file, None, "nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()
    return docs, loader.duplicates


def position(text: str, offset: int) -> Mark:
    """The line and column of a character offset in a text."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    return Mark(line, offset - (text.rfind("\n", 0, offset) + 1) + 1)


def parse_yaml(
    text: str,
    file: str = "<string>",
    dates: bool = True,
    max_values: int = MAX_VALUES,
    too_many: str = "",
) -> Any:
    """Parse one YAML document (JSON is YAML too) into PosDict/PosList values, as YAML 1.2's core
    schema reads it, with dates (2026-11-25) unless `dates` is false (scenarios have none: an id
    that looks like a date is text). A duplicate key is an error. Keys are text; nesting, aliases
    and the number of values are bounded (`too_many` is added to the error that says there are
    more than `max_values`)."""
    data, duplicates = parse_yaml_and_duplicates(text, file, dates, max_values, too_many)
    if duplicates:
        raise duplicates[0]
    return data


def parse_yaml_and_duplicates(
    text: str,
    file: str = "<string>",
    dates: bool = True,
    max_values: int = MAX_VALUES,
    too_many: str = "",
) -> tuple[Any, list[YamlProblem]]:
    """As `parse_yaml`, in one pass, but a duplicate key is not an error: the last value stands,
    as YAML has it, and every duplicate is returned beside the document (for a check that
    reports them all and still reads the rest of the file)."""
    docs, duplicates = _load_all(text, file, dates, max_values, too_many)
    if len(docs) > 1:
        raise YamlProblem(file, None, f"expected one YAML document, found {len(docs)}")
    return (docs[0] if docs else None), duplicates


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
