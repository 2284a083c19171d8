"""Whole populations: a FHIR Bulk Data export in, a row per patient (and a report) out, on this
machine's worker processes or on a Dask cluster.

- export: the export's manifest, files and lines (plain or gzip-compressed NDJSON).
- pushdown: which resources could change a patient's row (kept) and which are only counted.
- spill: kept resources into partition files on disk, by a hash of the patient id.
- partition: `evaluate_partition`, the pure function every runner calls on whole patients.
- local, dasked: the one-machine runner (worker processes, a retry per partition) and Dask's.
- tally, output, page: the counts, the rows written out, the HTML report.
- runner: `run_population`, what `caveat population` calls.
"""

from __future__ import annotations

from .partition import PatientRow, evaluate_partition
from .runner import run_population
from .tally import PopulationSummary

__all__ = ["PatientRow", "PopulationSummary", "evaluate_partition", "run_population"]
