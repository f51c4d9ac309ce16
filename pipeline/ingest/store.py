"""Writing landed samples, rejects and batch accounting to PostgreSQL: COPY in, set-based SQL, one transaction
per chunk (a crash loses at most the chunk in flight, and re-running lands only what is missing).

A chunk is handled in two steps so that an importer can overlap them: `prepare_chunk` serialises it for COPY (CPU,
Python), `write_chunk` sends it and runs the set-based insert (the server's work; psycopg releases the GIL while
it waits, so the next chunk can be parsed meanwhile).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Engine

from pipeline.ingest.landing import LANDED_COLUMNS, LandingSplit

Connection = psycopg.Connection[tuple[object, ...]]

_STAGE_COLUMNS = tuple(column.replace("_utc", "_us") for column in LANDED_COLUMNS)
# Everything is staged as the text `frame_to_csv` wrote: integer microseconds for instants, the shortest round-trip
# text for values. The identity hashes that text, which is what makes two rows the same sample, and costs the
# server no conversions back to text.
_STAGE_TABLE = f"""CREATE TEMP TABLE IF NOT EXISTS landing_stage ({", ".join(f"{c} text" for c in _STAGE_COLUMNS)})
    ON COMMIT DELETE ROWS"""
IDENTITY_SQL = """md5(user_id || '|' || metric || '|' || source_name || '|' || coalesce(device, '') || '|'
    || start_us || '|' || end_us || '|' || value || '|' || unit || '|' || coalesce(stage, '') || '|'
    || coalesce(external_id, ''))::uuid"""
_STAGED_ROWS = f"""SELECT {IDENTITY_SQL} AS identity, user_id, metric, value::double precision AS value, unit, stage,
    timestamptz 'epoch' + start_us::bigint * interval '1 microsecond' AS start_utc,
    timestamptz 'epoch' + end_us::bigint * interval '1 microsecond' AS end_utc,
    timezone, source_name, device_class, source_app, device, external_id, metadata::jsonb AS metadata
    FROM landing_stage"""
_INSERT_NEW = f"""INSERT INTO raw.samples (identity, batch_id, {", ".join(LANDED_COLUMNS)})
    SELECT identity, %s, {", ".join(LANDED_COLUMNS)} FROM ({_STAGED_ROWS}) staged
    WHERE user_id IN (SELECT user_id FROM app.users)
    ON CONFLICT (user_id, start_utc, identity) DO NOTHING"""
_QUARANTINE_UNKNOWN_USERS = f"""INSERT INTO raw.quarantine (batch_id, user_id, reason, payload)
    SELECT %s, user_id, format('unknown user %%L', user_id), to_jsonb(staged) - 'identity'
    FROM ({_STAGED_ROWS}) staged WHERE user_id NOT IN (SELECT user_id FROM app.users)"""
_REJECT_COLUMNS = ("user_id", "reason", "payload")


@dataclass
class BatchCounts:
    read: int = 0
    landed: int = 0
    duplicates: int = 0
    rejected: int = 0
    skipped: int = 0
    skipped_types: dict[str, int] = field(default_factory=dict)

    def add(self, other: BatchCounts) -> None:
        self.read += other.read
        self.landed += other.landed
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.skipped += other.skipped
        for key, count in other.skipped_types.items():
            self.skipped_types[key] = self.skipped_types.get(key, 0) + count

    @property
    def balanced(self) -> bool:
        """Every record read is accounted for: read = landed + duplicates + rejected + skipped."""
        return self.read == self.landed + self.duplicates + self.rejected + self.skipped


@contextmanager
def psycopg_connection(engine: Engine) -> Iterator[Connection]:
    """A psycopg 3 connection from the engine's pool (COPY needs the driver's own API), in autocommit mode:
    callers open explicit ``conn.transaction()`` blocks. The pool gets it back as it lent it."""
    raw = engine.raw_connection()
    driver = raw.driver_connection
    assert isinstance(driver, psycopg.Connection)
    try:
        driver.rollback()
        driver.autocommit = True
        yield driver
    finally:
        if not driver.closed:
            driver.autocommit = False
        raw.close()


def frame_to_csv(frame: pd.DataFrame, instants_as_micros: bool = True) -> str:
    """CSV for COPY, built with Arrow's vectorized string kernels (several times faster than ``to_csv``).

    NULL is an unquoted empty field; every text value is quoted, so an empty string stays an empty string.
    Datetime columns become integer microseconds since the epoch (exact, cheap to write and to parse); floats are
    written in their shortest round-trip form, so ``value::text`` in the identity hash sees the same number.
    """
    if frame.empty:
        return ""
    fields = []
    for column in frame.columns:
        series = frame[column]
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            naive = series.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]")
            if instants_as_micros:
                text = pc.cast(pa.array(naive.astype("int64").to_numpy(), mask=series.isna().to_numpy()), pa.string())
            else:  # ISO 8601 in UTC, for timestamptz columns
                iso = pc.cast(pa.array(naive.to_numpy(), mask=series.isna().to_numpy()), pa.string())
                text = pc.binary_join_element_wise(iso, "+00", "")
        elif pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
            text = pc.cast(
                pa.array(series.to_numpy(dtype=float if series.dtype.kind == "f" else None), from_pandas=True),
                pa.string(),
            )
        else:
            values = pa.array(series.astype("string").array, type=pa.string(), from_pandas=True)
            text = pc.binary_join_element_wise('"', pc.replace_substring(values, '"', '""'), '"', "")
        fields.append(pc.fill_null(text, ""))
    lines = pc.binary_join_element_wise(*fields, ",")
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    whole = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, len(lines)], pa.int32()), lines), "\n")
    return str(whole[0].as_py()) + "\n"


def _copy(conn: Connection, table: str, columns: tuple[str, ...], payload: str, options: str = "FORMAT csv") -> None:
    with conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH ({options})".encode()) as copy:
        copy.write(payload)


@dataclass(frozen=True)
class PreparedChunk:
    """A chunk serialised for COPY."""

    samples_csv: str
    sample_count: int
    rejects_csv: str
    reject_count: int


def prepare_chunk(split: LandingSplit) -> PreparedChunk:
    accepted = split.accepted[list(LANDED_COLUMNS)]
    rejects = split.rejected[list(_REJECT_COLUMNS)]
    return PreparedChunk(
        frame_to_csv(accepted) if len(accepted) else "",
        len(accepted),
        frame_to_csv(rejects) if len(rejects) else "",
        len(rejects),
    )


def write_chunk(conn: Connection, batch_id: int, chunk: PreparedChunk) -> BatchCounts:
    """Land one prepared chunk in one transaction: staged rows of known users whose identity is new are inserted;
    repeats (already landed, or twice in the chunk) count as duplicates; rows of unknown users are quarantined."""
    landed = unknown_user = 0
    with conn.transaction():
        if chunk.sample_count:
            conn.execute(_STAGE_TABLE)
            _copy(conn, "landing_stage", _STAGE_COLUMNS, chunk.samples_csv, "FORMAT csv, FORCE_NOT_NULL (unit)")
            landed = conn.execute(_INSERT_NEW.encode(), (batch_id,)).rowcount
            unknown_user = conn.execute(_QUARANTINE_UNKNOWN_USERS.encode(), (batch_id,)).rowcount
        if chunk.reject_count:
            conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS reject_stage (user_id text, reason text, payload jsonb) "
                "ON COMMIT DELETE ROWS"
            )
            _copy(conn, "reject_stage", _REJECT_COLUMNS, chunk.rejects_csv)
            conn.execute(
                """INSERT INTO raw.quarantine (batch_id, user_id, reason, payload)
                   SELECT %s, user_id, reason, payload FROM reject_stage""",
                (batch_id,),
            )
    return BatchCounts(
        read=chunk.sample_count + chunk.reject_count,
        landed=landed,
        duplicates=chunk.sample_count - landed - unknown_user,
        rejected=chunk.reject_count + unknown_user,
    )


def land_chunk(conn: Connection, batch_id: int, split: LandingSplit) -> BatchCounts:
    """Prepare and write one chunk (see `write_chunk`)."""
    return write_chunk(conn, batch_id, prepare_chunk(split))


def create_batch(conn: Connection, user_id: str | None, source: str, source_ref: str | None) -> int:
    row = conn.execute(
        "INSERT INTO app.ingest_batches (user_id, source, source_ref) VALUES (%s, %s, %s) RETURNING batch_id",
        (user_id, source, source_ref),
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def finish_batch(conn: Connection, batch_id: int, counts: BatchCounts, status: str = "done") -> None:
    conn.execute(
        """UPDATE app.ingest_batches SET status = %s, finished_at = now(), read_count = %s, landed_count = %s,
               duplicate_count = %s, rejected_count = %s, skipped_count = %s, skipped_types = %s
           WHERE batch_id = %s""",
        (
            status,
            counts.read,
            counts.landed,
            counts.duplicates,
            counts.rejected,
            counts.skipped,
            json.dumps(counts.skipped_types),
            batch_id,
        ),
    )
