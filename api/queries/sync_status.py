"""What the sync-status stream reads: the caller's recent ingest batches, the user-days a batch's samples fall on,
and when those days were last computed (``core.partition_stats``, written by every run that computes a day)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from api.queries.common import Row, fetch_rows
from pipeline.infra.database import Connection

# the batches a stream follows: started in the last two days (a day's samples are computed once it has ended in
# the user's zone), at most this many, the most recent
LOOKBACK = dt.timedelta(days=2)
MAX_BATCHES = 100


def recent_batches(conn: Connection, user_id: str, device_id: str | None, batch_id: int | None) -> list[Row]:
    """The user's batches, newest first: one batch (any age) when ``batch_id`` is given, else those started within
    `LOOKBACK`, of one device's syncs when ``device_id`` is given."""
    return fetch_rows(
        conn,
        """SELECT batch_id, source, source_ref, status, read_count, landed_count, duplicate_count, rejected_count,
                  started_at, finished_at
           FROM app.ingest_batches
           WHERE user_id = %(user)s
             AND (%(batch)s::bigint IS NOT NULL OR started_at >= now() - %(lookback)s::interval)
             AND (%(batch)s::bigint IS NULL OR batch_id = %(batch)s)
             AND (%(device)s::text IS NULL OR (source = 'device_sync' AND source_ref = %(device)s))
           ORDER BY batch_id DESC
           LIMIT %(limit)s""",
        {"user": user_id, "batch": batch_id, "device": device_id, "lookback": LOOKBACK, "limit": MAX_BATCHES},
    )


def batch_days(conn: Connection, user_id: str, batch_ids: Iterable[int]) -> dict[int, list[dt.date]]:
    """The local days of the batches' landed samples (each sample's start, in its own zone when it names one, else
    the user's home zone: the days the batch sensor computes, less their neighbours)."""
    rows = fetch_rows(
        conn,
        """SELECT DISTINCT s.batch_id, core.local_day(s.start_utc, s.timezone, u.home_timezone) AS local_date
           FROM raw.samples s JOIN app.users u USING (user_id)
           WHERE s.user_id = %(user)s AND s.batch_id = ANY(%(batches)s)""",
        {"user": user_id, "batches": list(batch_ids)},
    )
    days: dict[int, list[dt.date]] = {}
    for row in rows:
        days.setdefault(int(row["batch_id"]), []).append(row["local_date"])
    return days


def days_computed_at(conn: Connection, user_id: str, days: Iterable[dt.date]) -> dict[dt.date, dt.datetime]:
    """When each of the user's ``days`` was last computed (days never computed are absent)."""
    rows = fetch_rows(
        conn,
        "SELECT local_date, computed_at FROM core.partition_stats WHERE user_id = %s AND local_date = ANY(%s)",
        (user_id, sorted(set(days))),
    )
    return {row["local_date"]: row["computed_at"] for row in rows}


def device_exists(conn: Connection, user_id: str, device_id: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM app.devices WHERE user_id = %s AND device_id = %s", (user_id, device_id)
    ).fetchone()
    return row is not None
