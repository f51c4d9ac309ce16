"""Importing a file into the raw landing: reader -> structural split -> COPY, one batch per file, counted.

Before anything is read: the file must be a regular file (not a device or pipe), of a known format, and say whose
data it is (``user_id`` or a user in the file). A file that cannot be read to its end (a damaged or truncated Apple
export) raises `IncompleteImportError` carrying the counts of what landed before the fault; a file read to its end
returns its report, and `ImportReport.yielded_samples` tells whether it gave any sample at all. A text line no
parser can take (not UTF-8, a NUL, too long) is a reject like any other.

The batch is held (an advisory lock of the importing session, `store.create_held_batch`) while the import runs; a
batch left running by an import that died is marked abandoned by the next import or the batch sensor.
"""

from __future__ import annotations

import stat
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from pipeline.infra.database import psycopg_connection
from pipeline.ingest import apple_archive, apple_health, generic
from pipeline.ingest.landing import APPLE_DATE_FORMAT, LandingSplit, split_for_landing
from pipeline.ingest.store import (
    BatchCounts,
    create_held_batch,
    finish_batch,
    most_common_reject,
    prepare_chunk,
    release_batch,
    sweep_abandoned,
    write_chunk,
)
from pipeline.privacy.keyring import keyring_for

FORMATS = ("apple", "ndjson", "csv")


@dataclass(frozen=True)
class ImportReport:
    batch_id: int
    format: str
    counts: BatchCounts
    other_elements: dict[str, int]
    seconds: float
    source: str = ""  # the file's name
    top_reject: tuple[str, int] | None = None  # the most frequent reject reason and its count, when none landed

    @property
    def yielded_samples(self) -> bool:
        """Some record is a sample now in the landing: it landed, or had landed before (a re-import)."""
        return self.counts.landed + self.counts.duplicates > 0

    def nothing_imported(self) -> str:
        """One line on why a file that yielded no sample gave nothing."""
        c = self.counts
        if c.read == 0:
            return f"{self.source} yielded no sample: it holds no records"
        parts = []
        if c.rejected:
            where = f"raw.quarantine, batch {self.batch_id}"
            reason, times = self.top_reject or ("", 0)
            if times == c.rejected:
                parts.append(f'all {c.rejected:,} rejected for "{reason}" ({where})')
            elif times:
                parts.append(f'{c.rejected:,} rejected, {times:,} of them for "{reason}" ({where})')
            else:
                parts.append(f"{c.rejected:,} rejected ({where})")
        if c.skipped:
            parts.append(f"{c.skipped:,} of types outside the catalogue")
        read = f"{c.read:,} record{'s' if c.read != 1 else ''} read"
        return f"{self.source} yielded no sample: {read}, {', '.join(parts)}"

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


class IncompleteImportError(ValueError):
    """The file could not be read to its end; ``report`` counts what landed before the fault (the batch failed)."""

    def __init__(self, message: str, report: ImportReport) -> None:
        super().__init__(message)
        self.report = report


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
        assert user_id is not None  # refused before reading (`_check_user`)
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


def _check_file(path: Path) -> None:
    if path.is_dir():
        inside = [name for name in apple_archive.XML_NAMES if (path / name).is_file()]
        hint = f"; import the {inside[0]} inside it or the .zip" if inside else ""
        raise ValueError(f"{path} is a directory, not a file{hint}")
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if not stat.S_ISREG(path.stat().st_mode):  # a device (/dev/zero never ends), a pipe or a socket
        raise ValueError(f"{path} is not a regular file (a device, pipe or socket): save it to a file and import that")


def _check_user(path: Path, fmt: str, user_id: str | None) -> None:
    """Refuse, before anything is read, a file that does not say whose data it is when no user is given."""
    if user_id is not None:
        return
    if fmt == "apple":
        raise ValueError("an Apple Health export belongs to one person: pass --user")
    if fmt == "csv" and not generic.csv_has_user_column(path):
        raise ValueError(f"{path.name} has no user column (userId or user_id): pass --user")
    if fmt == "ndjson" and not generic.first_record_has_user(path):
        raise ValueError(f"the first record of {path.name} has no userId: pass --user")


def import_file(
    engine: Engine,
    path: Path,
    user_id: str | None,
    fmt: str | None = None,
    chunk_size: int = 30_000,  # per-chunk costs (~25 ms of pandas calls) vs memory: ~235-250 MB peak at 30,000
    on_progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import one file as one ingest batch. Re-importing the same file lands nothing new (all duplicates)."""
    _check_file(path)
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    _check_user(path, fmt, user_id)
    started = time.perf_counter()
    counts = BatchCounts()
    other: dict[str, int] = {}
    with psycopg_connection(engine) as conn:
        sweep_abandoned(conn)
        batch_id = create_held_batch(conn, user_id, fmt if fmt != "apple" else "apple_health", path.name)
        keys = keyring_for(conn)
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
                        prepared = prepare_chunk(split, keys)
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
        except apple_health.AppleExportError as exc:
            finish_batch(conn, batch_id, counts, status="failed")
            release_batch(conn, batch_id)
            report = ImportReport(batch_id, fmt, counts, other, time.perf_counter() - started, path.name)
            raise IncompleteImportError(str(exc), report) from exc
        except BaseException:
            if not conn.closed:
                finish_batch(conn, batch_id, counts, status="failed")
                release_batch(conn, batch_id)
            raise
        finish_batch(conn, batch_id, counts)
        release_batch(conn, batch_id)
        nothing = counts.landed + counts.duplicates == 0
        top_reject = most_common_reject(conn, batch_id) if counts.rejected and nothing else None
    return ImportReport(batch_id, fmt, counts, other, time.perf_counter() - started, path.name, top_reject)
