"""A population run's rows written out: JSON Lines, CSV or Parquet (a row per patient), or the
HTML report a medication-safety pharmacist reads (engine.population.page).

Every format is written to a temporary file beside the target and renamed into place once
whole, so a run that fails or is interrupted never leaves half a file where a report was.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Literal

import orjson

from ..errors import CaveatError

Format = Literal["jsonl", "csv", "parquet", "html"]
FORMATS: tuple[Format, ...] = ("jsonl", "csv", "parquet", "html")
PARQUET_BATCH = 10_000  # rows per Parquet row group

CSV_COLUMNS = (
    "patient",
    "as_of",
    "on_subject_drug",
    "warning",
    "statements",
    "caveats",
    "undetermined",
    "unrecognised",
    "not_covered",
    "unmapped",
    "error",
    "scenario",
)


class OutputError(CaveatError):
    """The output cannot be written as asked."""


def rows_of(files: list[Path]) -> Iterator[dict[str, Any]]:
    """The rows of the run, in partition order, one at a time."""
    for path in files:
        with open(path, "rb") as stream:
            for line in stream:
                yield orjson.loads(line)


@contextlib.contextmanager
def atomic(target: Path) -> Iterator[BinaryIO]:
    """A file that becomes `target` only once it is written whole."""
    directory = target.parent if str(target.parent) else Path(".")
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(out.fileno(), 0o666 & ~umask)  # as a plain open() would have made it
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_jsonl(files: list[Path], out: BinaryIO) -> int:
    count = 0
    for path in files:
        with open(path, "rb") as stream:
            while block := stream.read(1 << 20):
                out.write(block)
                count += block.count(b"\n")
    return count


def csv_row(row: dict[str, Any]) -> list[str]:
    """A row flattened for a spreadsheet: lists joined with '; ', the scenario as JSON."""
    statements = row["statements"]
    return [
        row["patient"],
        row["as_of"],
        "yes" if row["on_subject_drug"] else "no",
        "yes" if row["warning"] else "no",
        "; ".join(s["rule"] for s in statements),
        "; ".join(f"{s['rule']}: {', '.join(s['caveats'])}" for s in statements if s["caveats"]),
        "; ".join(f"{u['rule']} (needs {', '.join(u['needs'])})" for u in row["undetermined"]),
        "; ".join([*row["unrecognised"], *row.get("also_unrecognised", [])]),
        "; ".join(row["not_covered"]),
        "; ".join(row["unmapped"]),
        row.get("error") or "",
        orjson.dumps(row["scenario"]).decode(),
    ]


def write_csv(files: list[Path], out: BinaryIO) -> int:
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    writer = csv.writer(text)
    writer.writerow(CSV_COLUMNS)
    count = 0
    for row in rows_of(files):
        writer.writerow(csv_row(row))
        count += 1
    text.detach()
    return count


def parquet_module() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise OutputError(
            "--format parquet needs pyarrow: pip install 'caveat[parquet]' (or '.[parquet]' in "
            "a checkout)"
        ) from None
    return pyarrow


def write_parquet(files: list[Path], out: BinaryIO) -> int:
    """Rows as Parquet: lists as list<string> columns, statements as a list of structs, the
    scenario as JSON text."""
    pa = parquet_module()
    import pyarrow.parquet as pq

    strings = pa.list_(pa.string())
    statement = pa.struct(
        [
            ("rule", pa.string()),
            ("category", pa.string()),
            ("text", pa.string()),
            ("caveats", strings),
            ("indicator", pa.string()),
        ]
    )
    undetermined = pa.struct(
        [("rule", pa.string()), ("text", pa.string()), ("caveats", strings), ("needs", strings)]
    )
    schema = pa.schema(
        [
            ("patient", pa.string()),
            ("as_of", pa.date32()),
            ("on_subject_drug", pa.bool_()),
            ("warning", pa.bool_()),
            ("subject_orders", strings),
            ("statements", pa.list_(statement)),
            ("undetermined", pa.list_(undetermined)),
            ("unrecognised", strings),
            ("also_unrecognised", strings),
            ("not_covered", strings),
            ("unmapped", strings),
            ("notes", strings),
            ("error", pa.string()),
            ("scenario", pa.string()),
        ]
    )
    import datetime as dt

    count = 0
    with pq.ParquetWriter(out, schema) as writer:
        batch: list[dict[str, Any]] = []
        for row in rows_of(files):
            row["as_of"] = dt.date.fromisoformat(row["as_of"])
            row["scenario"] = orjson.dumps(row["scenario"]).decode()
            batch.append(row)
            if len(batch) >= PARQUET_BATCH:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                count += len(batch)
                batch = []
        if batch or not count:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            count += len(batch)
    return count
