"""A whole population run, from an export directory to the rows and the summary: the one entry
point the CLI (`caveat population`) and library users call, whichever engine runs it."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from ..errors import CaveatError
from ..knowledge_base import KnowledgeBase, load_knowledge_base
from .export import as_of_date, open_export
from .local import Outcome, OutOfSpace, Progress, Started, run_local
from .output import (
    FORMATS,
    Format,
    OutputError,
    atomic,
    parquet_module,
    rows_of,
    write_csv,
    write_jsonl,
    write_parquet,
)
from .page import MAX_REVIEW_ROWS, render_page
from .spill import partitions_for
from .tally import TOP_CODES, PopulationSummary, counts, least


class PopulationError(CaveatError):
    """A population run that cannot go on (no room for its partitions, a bad option)."""


def run_population(
    export_dir: str | Path,
    *,
    kb: KnowledgeBase | None = None,
    out: str | Path | None = None,
    fmt: Format = "jsonl",
    as_of: dt.date | None = None,
    everyone: bool = False,
    workers: int | None = None,
    dask: str | None = None,
    spill_dir: str | Path | None = None,
    partitions: int | None = None,
    today: dt.date | None = None,
    progress: Progress | None = None,
    started: Started | None = None,
    stdout: BinaryIO | None = None,
) -> PopulationSummary:
    """Evaluate a FHIR Bulk Data export, write its rows (or its report, for html) to `out`
    (standard output when None), and return the summary. `dask`: a scheduler's address, or
    'local' for a LocalCluster on this machine; None runs on this machine's worker processes.
    `partitions` overrides the number the export's size gives."""
    if fmt not in FORMATS:
        raise OutputError(f"unknown format {fmt!r}: give one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        parquet_module()
        if out is None:
            raise OutputError("--format parquet writes a binary file: give --out FILE.parquet")
    target = Path(out) if out is not None else None
    if target is not None and not (target.parent if str(target.parent) else Path(".")).is_dir():
        raise OutputError(f"{target}: its folder does not exist")
    pack = kb if kb is not None else load_knowledge_base()
    export = open_export(export_dir)
    when, source = as_of_date(as_of, export.manifest, today or dt.date.today())
    count = partitions or partitions_for(export)
    if count < 1:
        raise PopulationError("--partitions must be at least 1")
    workers = max(1, workers or min(os.cpu_count() or 1, 8))
    root = Path(spill_dir) if spill_dir is not None else None
    if root is not None and not root.is_dir():
        raise PopulationError(f"{root}: no such folder for the partitions (--spill-dir)")
    work = Path(tempfile.mkdtemp(prefix="caveat-population-", dir=root))
    try:
        if dask is None:
            outcome = run_local(
                export,
                pack,
                work,
                partitions=count,
                as_of=when,
                everyone=everyone,
                workers=workers,
                progress=progress,
                started=started,
            )
            used = min(workers, count)
            engine = f"local ({used} worker process{'es' if used > 1 else ''})"
        else:
            from .dasked import run_dask

            outcome = run_dask(
                export, pack, work, dask, partitions=count, as_of=when, everyone=everyone
            )
            engine = f"dask ({dask})"
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OutOfSpace(
                f"no space left in {work.parent} for the partition files ({exc.strerror}): give "
                "--spill-dir on a disk with room for the resources the export keeps"
            ) from None
        raise
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    try:
        summary = summarise(outcome, pack, export_dir, when, source, everyone, engine, count)
        _write(summary, outcome, pack, target, fmt, stdout)
        return summary
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT) and target is not None:
            raise PopulationError(
                f"no space left to write {target} ({exc.strerror}); it was left as it was"
            ) from None
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def summarise(
    outcome: Outcome,
    kb: KnowledgeBase,
    export_dir: str | Path,
    as_of: dt.date,
    source: str,
    everyone: bool,
    engine: str,
    partitions: int,
) -> PopulationSummary:
    t = outcome.tally
    words = dict(outcome.reading.words)
    return PopulationSummary(
        export=str(export_dir),
        as_of=as_of,
        as_of_from=source,
        pack={"id": kb.id, "version": kb.version, "digest": kb.digest},
        everyone=everyone,
        engine=engine,
        partitions=partitions,
        reading=outcome.reading.model_copy(update={"words": {}}),
        patients=t.patients,
        patients_evaluated=t.evaluated,
        patients_on_subject_drug=t.on_subject,
        patients_with_warning=t.warned,
        warning_patients=least(t.warning),
        rules=counts(t.rules, t.texts),
        caveats=counts(t.caveats, {}),
        undetermined=counts(t.undetermined, t.texts),
        unrecognised=counts(t.unrecognised, words, TOP_CODES),
        patient_errors=t.errors,
        spill_lines_damaged=t.damaged,
        failed_partitions=outcome.failed,
        seconds=outcome.seconds,
    )


def _write(
    summary: PopulationSummary,
    outcome: Outcome,
    kb: KnowledgeBase,
    target: Path | None,
    fmt: Format,
    stdout: BinaryIO | None,
) -> None:
    def body(stream: BinaryIO) -> None:
        if fmt == "jsonl":
            write_jsonl(outcome.row_files, stream)
        elif fmt == "csv":
            write_csv(outcome.row_files, stream)
        elif fmt == "parquet":
            write_parquet(outcome.row_files, stream)
        else:
            review: list[dict[str, Any]] = []
            for row in rows_of(outcome.row_files):
                if row["warning"]:
                    review.append(row)
                    if len(review) >= MAX_REVIEW_ROWS:
                        break
            review.sort(key=lambda r: r["patient"])
            stream.write(render_page(summary, review, kb).encode())

    if target is None:
        stream = stdout if stdout is not None else sys.stdout.buffer
        body(stream)
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
        return
    with atomic(target) as stream:
        body(stream)


def summary_json(summary: PopulationSummary) -> bytes:
    return orjson.dumps(summary.model_dump(mode="json"), option=orjson.OPT_INDENT_2)
