"""Writing landed samples, rejects and batch accounting to PostgreSQL: COPY in, set-based SQL, one transaction
per chunk (a crash loses at most the chunk in flight, and re-running lands only what is missing)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pandas as pd
import psycopg
from sqlalchemy import Engine

from pipeline.ingest.landing import LANDED_COLUMNS, LandingSplit

Connection = psycopg.Connection[tuple[object, ...]]

# What makes two rows the same sample. Epoch seconds and float8 text output are independent of session settings.
IDENTITY_SQL = """md5(concat_ws('|', user_id, metric, source_name, coalesce(device, ''),
    extract(epoch FROM start_utc)::text, extract(epoch FROM end_utc)::text, value::text, unit,
    coalesce(stage, ''), coalesce(external_id, '')))::uuid"""


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


def _copy_frame(conn: Connection, table: str, frame: pd.DataFrame, force_not_null: tuple[str, ...] = ()) -> None:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False, date_format="%Y-%m-%d %H:%M:%S.%f%z")
    options = "FORMAT csv"
    if force_not_null:
        options += f", FORCE_NOT_NULL ({', '.join(force_not_null)})"
    with conn.cursor().copy(f"COPY {table} ({', '.join(frame.columns)}) FROM STDIN WITH ({options})".encode()) as cp:
        cp.write(buffer.getvalue())


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


def _reject_unknown_users(conn: Connection, split: LandingSplit) -> LandingSplit:
    users = split.accepted["user_id"].unique().tolist()
    if not users:
        return split
    known = {r[0] for r in conn.execute("SELECT user_id FROM app.users WHERE user_id = ANY(%s)", (users,))}
    unknown = ~split.accepted["user_id"].isin(known)
    if not unknown.any():
        return split
    moved = split.accepted[unknown]
    extra = pd.DataFrame(
        {
            "user_id": moved["user_id"],
            "reason": "unknown user '" + moved["user_id"] + "'",
            "payload": [
                json.dumps(r, default=str, ensure_ascii=False)
                for r in moved.astype(object).where(moved.notna(), None).to_dict(orient="records")
            ],
        }
    )
    return LandingSplit(split.accepted[~unknown], pd.concat([split.rejected, extra], ignore_index=True))


def land_chunk(conn: Connection, batch_id: int, split: LandingSplit) -> BatchCounts:
    """Land one chunk in one transaction. Rows whose identity is already in raw.samples (or repeated inside the
    chunk) count as duplicates and are not written again."""
    with conn.transaction():
        split = _reject_unknown_users(conn, split)
        landed = 0
        if len(split.accepted):
            columns = ", ".join(LANDED_COLUMNS)
            conn.execute(
                f"""CREATE TEMP TABLE IF NOT EXISTS landing_stage ON COMMIT DELETE ROWS AS
                    SELECT {columns} FROM raw.samples WITH NO DATA""".encode()
            )
            _copy_frame(conn, "landing_stage", split.accepted[list(LANDED_COLUMNS)], force_not_null=("unit",))
            cursor = conn.execute(
                f"""INSERT INTO raw.samples (identity, batch_id, {columns})
                    SELECT {IDENTITY_SQL}, %s, {columns} FROM landing_stage
                    ON CONFLICT (identity) DO NOTHING""".encode(),
                (batch_id,),
            )
            landed = cursor.rowcount
        if len(split.rejected):
            rejects = split.rejected.assign(batch_id=batch_id)[["batch_id", "user_id", "reason", "payload"]]
            _copy_frame(conn, "raw.quarantine", rejects)
    return BatchCounts(
        read=len(split.accepted) + len(split.rejected),
        landed=landed,
        duplicates=len(split.accepted) - landed,
        rejected=len(split.rejected),
    )


def ensure_user(conn: Connection, user_id: str, home_timezone: str = "UTC", display_name: str | None = None) -> bool:
    """Create the user if missing; True if created."""
    cursor = conn.execute(
        """INSERT INTO app.users (user_id, home_timezone, display_name) VALUES (%s, %s, %s)
           ON CONFLICT (user_id) DO NOTHING""",
        (user_id, home_timezone, display_name),
    )
    return cursor.rowcount == 1
