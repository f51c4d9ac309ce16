"""Importing a file into the raw landing: reader -> structural split -> COPY, one batch per file, counted."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from pipeline.ingest import apple_health, generic
from pipeline.ingest.landing import APPLE_DATE_FORMAT, LandingSplit, split_for_landing
from pipeline.ingest.store import (
    BatchCounts,
    create_batch,
    finish_batch,
    prepare_chunk,
    psycopg_connection,
    write_chunk,
)

FORMATS = ("apple", "ndjson", "csv")


@dataclass(frozen=True)
class ImportReport:
    batch_id: int
    format: str
    counts: BatchCounts
    other_elements: dict[str, int]
    seconds: float

    def describe(self) -> str:
        c = self.counts
        lines = [
            f"batch {self.batch_id} ({self.format}): read {c.read:,} records in {self.seconds:.1f}s "
            f"({c.read / max(self.seconds, 1e-9):,.0f}/s)",
            f"  landed {c.landed:,}, duplicates {c.duplicates:,}, rejected {c.rejected:,} "
            f"(see raw.quarantine), skipped types {c.skipped:,}",
        ]
        for name, count in sorted(c.skipped_types.items(), key=lambda kv: -kv[1])[:15]:
            lines.append(f"    skipped {name}: {count:,}")
        if self.other_elements:
            other = ", ".join(f"{k} {v:,}" for k, v in sorted(self.other_elements.items()))
            lines.append(f"  not imported (not samples): {other}")
        return "\n".join(lines)


def detect_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".xml", ".zip"):
        return "apple"
    if suffix in (".ndjson", ".jsonl", ".json"):
        return "ndjson"
    if suffix == ".csv":
        return "csv"
    raise ValueError(f"cannot tell the format of {path.name}; pass --format ({', '.join(FORMATS)})")


def _splits(
    path: Path,
    fmt: str,
    user_id: str | None,
    chunk_size: int,
    on_progress: Callable[[int, int], None] | None,
    other_elements: dict[str, int],
) -> Iterator[tuple[LandingSplit, BatchCounts]]:
    """(split, extra counts) per chunk; extra counts carry records read but skipped before the split.
    ``other_elements`` is filled with the export's non-sample elements (Workout, ActivitySummary, ...)."""
    if fmt == "apple":
        if user_id is None:
            raise ValueError("an Apple Health export belongs to one person: pass --user")
        skipped_before = 0
        skipped_types_before: dict[str, int] = {}
        for frame, summary in apple_health.read_export(path, user_id, chunk_size, on_progress):
            skipped_now = sum(summary.skipped_types.values())
            new_types = {k: v - skipped_types_before.get(k, 0) for k, v in summary.skipped_types.items()}
            extra = BatchCounts(
                read=skipped_now - skipped_before,
                skipped=skipped_now - skipped_before,
                skipped_types={k: v for k, v in new_types.items() if v},
            )
            skipped_before, skipped_types_before = skipped_now, dict(summary.skipped_types)
            other_elements.update(summary.other_elements)
            yield split_for_landing(frame, APPLE_DATE_FORMAT), extra
        return
    reader = generic.read_ndjson if fmt == "ndjson" else generic.read_csv
    for chunk in reader(path, user_id, chunk_size, on_progress):
        split = split_for_landing(chunk.samples, "ISO8601")
        yield (
            LandingSplit(split.accepted, pd.concat([split.rejected, chunk.malformed], ignore_index=True)),
            BatchCounts(),
        )


def import_file(
    engine: Engine,
    path: Path,
    user_id: str | None,
    fmt: str | None = None,
    chunk_size: int = 30_000,  # per-chunk costs (~25 ms of pandas calls) vs memory: ~235-250 MB peak at 30,000
    on_progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import one file as one ingest batch. Re-importing the same file lands nothing new (all duplicates)."""
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    started = time.perf_counter()
    counts = BatchCounts()
    other: dict[str, int] = {}
    with psycopg_connection(engine) as conn:
        batch_id = create_batch(conn, user_id, fmt if fmt != "apple" else "apple_health", path.name)
        try:
            # Overlap: while the server inserts chunk n (psycopg waits without the GIL), Python parses chunk n+1.
            # At most one chunk is in flight, so memory stays bounded. A chunk is expected to be all new (a plain
            # INSERT, see `write_chunk`) unless the one before it held repeats: a re-import or the rerun of an
            # interrupted import then goes straight to ON CONFLICT, and back to plain inserts once past the repeats.
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="landing-writer") as writer:
                in_flight: Future[BatchCounts] | None = None
                expect_new = True
                try:
                    for split, extra in _splits(path, fmt, user_id, chunk_size, on_progress, other):
                        prepared = prepare_chunk(split)
                        if in_flight is not None:
                            done = in_flight.result()
                            in_flight = None
                            counts.add(done)
                            expect_new = done.duplicates == 0
                        in_flight = writer.submit(write_chunk, conn, batch_id, prepared, expect_new)
                        counts.add(extra)
                finally:
                    if in_flight is not None:  # also when reading failed: what was sent is landed and counted
                        counts.add(in_flight.result())
        except BaseException:
            finish_batch(conn, batch_id, counts, status="failed")
            raise
        finish_batch(conn, batch_id, counts)
    return ImportReport(batch_id, fmt, counts, other, time.perf_counter() - started)
