"""The same population pipeline on Dask (`caveat population --dask ADDRESS|local`), for exports
past one machine. Needs the `dask` extra: pip install 'caveat[dask]'.

The graph is a dask.bag:

1. Medication resources (which belong to no patient) are read first, on the client, from the
   export's Medication files, and handed to every task that needs them. (On one machine a
   Medication resource found in any other file is read too; here only those of the Medication
   files are: an order naming another stays as its reference's display, else unmapped.)
2. Reading: a task per NDJSON file, or per byte range of a large uncompressed one (its first
   line's number counted on the client, so every line keeps its file and line), applies the
   push-down (engine.population.pushdown) and gives the kept lines keyed by their partition (a
   stable hash of the patient id, as on one machine), with its counts.
3. `Bag.groupby` on the partition number brings each partition's lines together on a worker
   (an integer key: hashed the same in every process).
4. Each partition is evaluated by `evaluate_partition`'s own steps (engine.population.
   partition), on a worker that loaded and compiled the pack once, when it started (a worker
   plugin, `PackPlugin`), never per patient or per task.

Each partition's evaluation is its own future: a worker that dies mid-partition has the task
rescheduled on another worker (once with `--dask local`, whose scheduler's `allowed-failures`
is set to 1; as often as a remote scheduler's own setting allows, 3 by default); a partition that
fails for good (KilledWorker, or an error) is recorded by name, and the others go on.
The pack's folder must be readable at the same path on every worker.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path
from typing import Any

import orjson

from ..knowledge_base import KnowledgeBase, load_knowledge_base
from ..pack import bundled_pack_path
from .export import Chunk, Export, ExportError
from .local import Outcome
from .partition import patient_rows
from .pushdown import medication_index
from .spill import Reading, export_chunks, group_lines, sort_chunk
from .tally import FailedPartition, Tally, counted_rows

_PACKS: dict[tuple[str, str], KnowledgeBase] = {}


def dask_modules() -> tuple[Any, Any, Any]:
    try:
        import dask
        import dask.bag as db
        import distributed
    except ImportError:
        raise ExportError(
            "--dask needs Dask: pip install 'caveat[dask]' (or '.[dask]' in a checkout)"
        ) from None
    return dask, db, distributed


def pack_for(root: str, digest: str) -> KnowledgeBase:
    """The pack at `root`, loaded and compiled once per process, checked to be the one the
    client has (the same digest)."""
    key = (root, digest)
    kb = _PACKS.get(key)
    if kb is None:
        kb = load_knowledge_base(root)
        if kb.digest != digest:
            raise ExportError(
                f"the pack at {root} on this worker has digest {kb.digest[:12]}, not the "
                f"client's {digest[:12]}: give every worker the same pack"
            )
        _PACKS[key] = kb
    return kb


def _plugin_class() -> type:
    from distributed import WorkerPlugin

    class PackPlugin(WorkerPlugin):  # type: ignore[misc]
        """Loads and compiles the pack once, as a worker starts."""

        name = "caveat-pack"

        def __init__(self, root: str, digest: str) -> None:
            self.root = root
            self.digest = digest

        def setup(self, worker: Any) -> None:
            pack_for(self.root, self.digest)

    return PackPlugin


def read_chunk(
    chunk: Chunk,
    root: str,
    digest: str,
    medications: list[dict[str, Any]],
    partitions: int,
) -> list[tuple[Any, ...]]:
    """The kept lines of a chunk as (partition, line) pairs, and ("counts", Reading) last."""
    kb = pack_for(root, digest)
    index = medication_index(medications) if medications else {}
    reading = Reading()
    cpu = time.process_time()
    out: list[tuple[Any, ...]] = [
        (where, line.rstrip(b"\n"))
        for where, line in sort_chunk(chunk, kb, index, partitions, reading)
        if where >= 0  # (Medication resources: read on the client, from the Medication files)
    ]
    reading.cpu_seconds = time.process_time() - cpu
    out.append(("counts", reading))
    return out


def evaluate_group(
    group: tuple[int, list[tuple[int, bytes]]],
    root: str,
    digest: str,
    medications: list[dict[str, Any]],
    as_of: dt.date,
    everyone: bool,
) -> tuple[int, list[bytes], Tally]:
    """One partition's lines evaluated: (partition, rows as JSON, counts)."""
    index, lines = group
    kb = pack_for(root, digest)
    cpu = time.process_time()
    groups, markers, damaged = group_lines(raw for _, raw in lines)
    tally = Tally(damaged=damaged)
    rows = list(
        counted_rows(patient_rows(groups, kb, medications, as_of, everyone, markers), tally)
    )
    tally.cpu = time.process_time() - cpu
    return index, rows, tally


def run_dask(
    export: Export,
    kb: KnowledgeBase,
    directory: Path,
    address: str,
    *,
    partitions: int,
    as_of: dt.date,
    everyone: bool,
) -> Outcome:
    """Run the pipeline on a Dask cluster (`address`, or 'local' for a LocalCluster of this
    machine's cores, a process each); the rows go to files in `directory`, as on one machine."""
    dask, db, distributed = dask_modules()
    root = str(kb.root if kb.root else bundled_pack_path())
    cpu0 = time.process_time()
    reading = Reading()
    lines: list[bytes] = []
    medication, chunks = export_chunks(export)
    for chunk in medication:
        lines += [line for where, line in sort_chunk(chunk, kb, {}, partitions, reading)]
    medications = [orjson.loads(line) for line in lines if line.startswith(b"{")]
    medications = [m for m in medications if m.get("resourceType") == "Medication"]
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        cluster = None
        if address == "local":
            cluster = distributed.LocalCluster(
                n_workers=min(os.cpu_count() or 1, 4),
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            )
            client = distributed.Client(cluster)
        else:
            client = distributed.Client(address)
        try:
            return _run(
                client,
                db,
                distributed,
                chunks,
                kb,
                root,
                directory,
                medications,
                reading,
                partitions,
                as_of,
                everyone,
                cpu0,
            )
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


def _run(
    client: Any,
    db: Any,
    distributed: Any,
    chunks: list[Chunk],
    kb: KnowledgeBase,
    root: str,
    directory: Path,
    medications: list[dict[str, Any]],
    reading: Reading,
    partitions: int,
    as_of: dt.date,
    everyone: bool,
    cpu0: float,
) -> Outcome:
    client.register_plugin(_plugin_class()(root, kb.digest))
    started = time.monotonic()
    bag = (
        db.from_sequence(chunks, npartitions=len(chunks))
        .map(read_chunk, root, kb.digest, medications, partitions)
        .flatten()
    )
    counts = bag.filter(lambda item: item[0] == "counts").map(lambda item: item[1])
    kept = bag.filter(lambda item: item[0] != "counts")
    grouped = kept.groupby(lambda item: item[0], npartitions=partitions)
    evaluated = grouped.map(evaluate_group, root, kb.digest, medications, as_of, everyone)
    reads = counts.to_delayed()
    futures = client.compute([*reads, *evaluated.to_delayed()])
    for chunk, future in zip(chunks, futures[: len(reads)], strict=True):
        try:
            for part in future.result():
                reading.merge(part)
        except Exception as exc:  # a reading task that failed for good (its partitions fail too)
            reading.problem(chunk[1], 0, f"could not be read on the cluster: {_said(exc)}")
    numbered = {future: i for i, future in enumerate(futures[len(reads) :])}
    tally = Tally()
    failed: list[FailedPartition] = []
    files = []
    for future in distributed.as_completed(list(numbered)):  # each written, then let go
        try:
            results = future.result()
        except Exception as exc:  # KilledWorker past the allowed failures, or an error
            failed.append(
                FailedPartition(
                    partition=f"dask-{numbered[future]:05d}", patients=None, attempts=[_said(exc)]
                )
            )
            continue
        finally:
            future.release()
        for index, lines, part_tally in results:
            path = directory / f"rows-{index:05d}.jsonl"
            with open(path, "wb") as out:
                out.writelines(line + b"\n" for line in lines)
            files.append(path)
            tally.merge(part_tally)
    files.sort()
    wall = time.monotonic() - started
    return Outcome(
        reading=reading,
        tally=tally,
        row_files=files,
        failed=failed,
        seconds={
            "client": round(time.process_time() - cpu0, 3),
            "reading and grouping": round(reading.cpu_seconds, 3),
            "evaluating": round(tally.cpu, 3),
            "wall": round(wall, 3),
        },
    )


def _said(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
