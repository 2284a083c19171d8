"""The same population pipeline on Dask (`caveat population --dask ADDRESS|local`), for exports
past one machine. Needs the `dask` extra: pip install 'caveat[dask]'.

The graph is a dask.bag:

1. Medication resources (which belong to no patient) are read first, on the client, and handed
   to every task that needs them.
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
rescheduled on another worker once (the scheduler's `allowed-failures` is 1 here); a partition
that fails twice (KilledWorker, or an error) is recorded by name, and the others go on.
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
from .export import Export, ExportError, ExportFile, parse_line, read_lines
from .local import Outcome
from .partition import patient_rows
from .pushdown import decide, medication_index, patient_of
from .spill import Reading, bucket
from .tally import FailedPartition, Tally

CHUNK_BYTES = 64 * 1024 * 1024  # an uncompressed file is read in ranges of about this size
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


def chunks_of(file: ExportFile) -> list[tuple[str, str, int, int, int]]:
    """(path, name, start, end, first line) ranges of a file: a gzip file whole, a plain file in
    ranges of CHUNK_BYTES that end at a line's end."""
    path = str(file.path)
    if file.compressed or file.size <= CHUNK_BYTES:
        return [(path, file.path.name, 0, -1, 1)]
    out = []
    start, line = 0, 1
    with open(path, "rb") as stream:
        while start < file.size:
            stream.seek(start + CHUNK_BYTES)
            stream.readline()
            end = min(stream.tell(), file.size)
            stream.seek(start)
            count = 0
            left = end - start
            while left > 0:
                block = stream.read(min(left, 1 << 20))
                count += block.count(b"\n")
                left -= len(block)
            out.append((path, file.path.name, start, end, line))
            line += count
            start = end
    return out


def read_chunk(
    chunk: tuple[str, str, int, int, int],
    root: str,
    digest: str,
    medications: list[dict[str, Any]],
    partitions: int,
) -> list[tuple[Any, ...]]:
    """The kept lines of a chunk as (partition, line) pairs, and ("counts", Reading) last."""
    path, name, start, end, first = chunk
    kb = pack_for(root, digest)
    index = medication_index(medications) if medications else {}
    reading = Reading(files=1 if start == 0 else 0)
    dropped: dict[str, int] = {}
    out: list[tuple[Any, ...]] = []
    try:
        for number, raw in _lines(Path(path), start, end, first):
            resource = parse_line(raw)
            if isinstance(resource, str):
                reading.problem(name, number, resource)
                continue
            reading.resources_read += 1
            rtype = resource["resourceType"]
            if rtype == "Medication":
                reading.resources_kept += 1  # (read on the client, for every task)
                continue
            if rtype == "Patient":
                reading.patients_seen += 1
            pid = patient_of(resource)
            if pid is None:
                from .spill import _no_patient, _patient_compartment

                if rtype == "Patient" or _patient_compartment(resource):
                    reading.problem(name, number, _no_patient(resource))
                else:
                    dropped[rtype] = dropped.get(rtype, 0) + 1
                continue
            decision = decide(resource, kb, index)
            if decision.item and decision.words:
                reading.words.setdefault(decision.item, decision.words)
            if decision.keep:
                reading.resources_kept += 1
                out.append((bucket(pid, partitions), raw.rstrip(b"\n")))
            else:
                dropped[decision.why] = dropped.get(decision.why, 0) + 1
                if decision.item:
                    out.append((bucket(pid, partitions), orjson.dumps(["u", pid, decision.item])))
    except ExportError as exc:
        reading.problem(name, 0, str(exc))
    reading.dropped = dropped
    out.append(("counts", reading))
    return out


def _lines(path: Path, start: int, end: int, first: int) -> Any:
    if end < 0:
        yield from read_lines(path)
        return
    with open(path, "rb") as stream:
        stream.seek(start)
        number = first - 1
        while stream.tell() < end:
            raw = stream.readline()
            if not raw:
                break
            number += 1
            if raw.strip():
                yield number, raw


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
    groups: dict[str, list[dict[str, Any]]] = {}
    markers: dict[str, list[str]] = {}
    for _, raw in lines:
        value = orjson.loads(raw)
        if isinstance(value, list):
            markers.setdefault(value[1], []).append(value[2])
            groups.setdefault(value[1], [])
            continue
        pid = patient_of(value)
        if pid is not None:
            groups.setdefault(pid, []).append(value)
    tally = Tally()
    rows: list[bytes] = []
    for pid, row in patient_rows(groups, kb, medications, as_of, everyone, markers):
        tally.add(pid, row)
        if row is not None:
            rows.append(orjson.dumps(row.model_dump(mode="json")))
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
    medications: list[dict[str, Any]] = []
    reading = Reading()
    for file in export.files:
        if file.type == "Medication" or file.path.name.startswith("Medication."):
            for number, raw in read_lines(file.path):
                resource = parse_line(raw)
                if isinstance(resource, str):
                    reading.problem(file.path.name, number, resource)
                elif resource["resourceType"] == "Medication":
                    medications.append(resource)
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
                export,
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
    export: Export,
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
    chunks = [c for f in export.files for c in chunks_of(f)]
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
    for future in futures[: len(reads)]:
        for part in future.result():
            _merge(reading, part)
    futures = futures[len(reads) :]
    tally = Tally()
    failed: list[FailedPartition] = []
    rows: dict[int, list[bytes]] = {}
    for i, future in enumerate(futures):
        try:
            results = future.result()
        except Exception as exc:  # KilledWorker twice, or an error in the task
            failed.append(
                FailedPartition(
                    partition=f"dask-{i:05d}",
                    patients=None,
                    attempts=[f"{type(exc).__name__}: {exc}"],
                )
            )
            continue
        for index, lines, part_tally in results:
            rows[index] = lines
            tally.merge(part_tally)
    files = []
    for index in sorted(rows):
        path = directory / f"rows-{index:05d}.jsonl"
        with open(path, "wb") as out:
            out.writelines(line + b"\n" for line in rows[index])
        files.append(path)
    wall = time.monotonic() - started
    return Outcome(
        reading=reading,
        tally=tally,
        row_files=files,
        failed=failed,
        seconds={"client": round(time.process_time() - cpu0, 3), "wall": round(wall, 3)},
    )


def _merge(into: Reading, part: Reading) -> None:
    into.files += part.files
    into.resources_read += part.resources_read
    into.resources_kept += part.resources_kept
    into.patients_seen += part.patients_seen
    for reason, count in part.dropped.items():
        into.dropped[reason] = into.dropped.get(reason, 0) + count
    for u in part.unreadable:
        into.problem(u.file, u.line, u.reason)
    into.unreadable_more += part.unreadable_more
    for item, words in part.words.items():
        into.words.setdefault(item, words)
