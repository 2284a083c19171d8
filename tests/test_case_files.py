"""Reading case files: JSON Lines in blocks of whole lines, cut wherever a read happens to end."""

from __future__ import annotations

import io
import json
from pathlib import Path

from conftest import caveat
from hypothesis import given
from hypothesis import strategies as st

from engine.casefiles import BLOCK, Lines, cases_in, entries_of, read_cases

LONG = json.dumps({"id": "long", "conditions": ["RLS"], "description": "x" * (3 * BLOCK)})
TRICKY = (
    b'{"id": "crlf", "conditions": ["RLS"]}\r\n'
    b"\n"
    b" \t \r\n"
    b'   {"id": "indented", "conditions": ["bruxism"]}\n'
    b"{oops\n"
    b'{"id": "latin-1", "conditions": ["caf\xe9"]}\n' + LONG.encode() + b"\n"
    b'{"id": "unended", "conditions": ["akathisia"]}'
)


class Pieces(io.RawIOBase):
    """A stream that gives at most the next of `sizes` bytes a read, as a pipe may."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self.data, self.sizes, self.at = data, sizes, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        step = self.sizes[self.at % len(self.sizes)] if self.sizes else size
        piece = self.data[: min(size, step)]
        self.data = self.data[len(piece) :]
        self.at += 1
        return piece


def expected(data: bytes) -> list[tuple[int, int, bytes]]:
    """(index, line, text) of every record, the plain way: split the whole text at newlines."""
    lines = [(n, raw) for n, raw in enumerate(data.split(b"\n"), start=1) if raw.strip()]
    return [(i, n, raw) for i, (n, raw) in enumerate(lines)]


def records(stream: io.RawIOBase) -> list[tuple[int, int, bytes]]:
    blocks = list(read_cases(["-"], stdin=stream, parse_json_lines=False))
    if blocks and not isinstance(blocks[-1], Lines):  # a stream of no records is an error
        assert "no records" in blocks.pop().error
        assert sum(cases_in(b) for b in blocks) == 0
    assert all(isinstance(b, Lines) and b.path == "<stdin>" for b in blocks)
    entries = [e for b in blocks for e in entries_of(b)]
    assert sum(cases_in(b) for b in blocks) == len(entries)
    return [(e.index, e.line, e.data) for e in entries]


def test_tricky_lines_are_read_with_their_places_and_problems(tmp_path: Path):
    path = tmp_path / "tricky.jsonl"
    path.write_bytes(TRICKY)
    got = {e.name: e for e in read_cases([path])}
    assert got["crlf"].line == 1 and got["crlf"].index == 0
    assert got["indented"].line == 4 and got["indented"].index == 1
    assert "tricky.jsonl:5:2: not valid JSON" in got[f"{path}#3"].error
    assert got[f"{path}#4"].error.endswith("tricky.jsonl:6:38: not valid UTF-8 (byte 0xe9)")
    assert got["long"].line == 7 and len(got["long"].data["description"]) == 3 * BLOCK
    assert got["unended"].line == 8 and got["unended"].index == 5
    assert len(got) == 6


@given(
    st.lists(
        st.sampled_from([b"{}", b'{"a": 1}', b"", b" ", b"\t\r", b"x" * 50, b" {}", b"{\xff}"]),
        max_size=40,
    ),
    st.lists(st.integers(1, 64), max_size=5),
    st.booleans(),
)
def test_blocks_give_every_record_once_wherever_reads_end(lines, sizes, ended):
    data = b"\n".join(lines) + (b"\n" if ended and lines else b"")
    assert records(Pieces(data, sizes)) == expected(data)


def test_a_text_stream_is_read_too():
    text = '{"id": "a"}\n\n{"id": "b"}\n'
    assert records(io.StringIO(text)) == expected(text.encode())


def test_parallel_and_serial_agree_on_tricky_lines(tmp_path: Path):
    path = tmp_path / "tricky.jsonl"
    path.write_bytes(TRICKY * 50)
    outputs = []
    for workers in ("1", "2"):
        out = tmp_path / f"{workers}.jsonl"
        proc = caveat("batch", str(path), "--workers", workers, "--quiet", "--out", str(out))
        assert proc.returncode == 2, proc.stderr
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    lines = [json.loads(line) for line in outputs[0].splitlines()]
    assert len(lines) == 50 * 6 - 49  # each copy's unended last line runs into the next copy
    assert [r["line"] for r in lines[:7]] == [1, 4, 5, 6, 7, 8, 11]
    assert [r["case"] for r in lines[:2]] == ["crlf", "indented"]
    assert "tricky.jsonl:8:47: not valid JSON: Extra data" in lines[5]["problems"][0]
