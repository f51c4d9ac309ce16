"""What the sync-status stream reads: the caller's recent ingest batches, the user-days a batch's samples fall on,
and when those days were last computed (``core.partition_stats``, written by every run that computes a day)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from api.queries.common import Row, fetch_rows
from api.sync_status import BatchSnapshot, StatusTracker
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


def snapshots(
    conn: Connection, user_id: str, device_id: str | None, batch_id: int | None, tracker: StatusTracker
) -> list[BatchSnapshot]:
    """One poll of a stream: the batches (oldest first) with, for those landed and not yet settled, their user-days
    (looked up once per batch: raw rows never change) and which of them were computed since the batch landed."""
    rows = recent_batches(conn, user_id, device_id, batch_id)
    landed = [int(r["batch_id"]) for r in rows if r["status"] == "done" and not tracker.settled(int(r["batch_id"]))]
    unknown = [batch for batch in landed if batch not in tracker.days]
    if unknown:
        found = batch_days(conn, user_id, unknown)
        tracker.days.update({batch: found.get(batch, []) for batch in unknown})
    wanted = {day for batch in landed for day in tracker.days[batch]}
    computed = days_computed_at(conn, user_id, wanted) if wanted else {}
    found_snapshots = []
    for row in reversed(rows):
        days = tracker.days.get(int(row["batch_id"])) if row["status"] == "done" else None
        finished: dt.datetime | None = row["finished_at"]
        since = [computed[d] for d in days or () if d in computed and finished and computed[d] >= finished]
        found_snapshots.append(
            BatchSnapshot(
                batch_id=int(row["batch_id"]),
                source=row["source"],
                source_ref=row["source_ref"],
                status=row["status"],
                read=row["read_count"],
                landed=row["landed_count"],
                duplicates=row["duplicate_count"],
                rejected=row["rejected_count"],
                started_at=row["started_at"],
                finished_at=finished,
                days=None if days is None else len(days),
                computed_days=len(since),
                last_computed_at=max(since, default=None),
            )
        )
    return found_snapshots
