"""The day summary: one user's daily marts row per metric, the night's sleep stages, active insights, the day's
health score and how fresh the user's data is."""

from __future__ import annotations

import datetime as dt

from api.queries.common import Row, fetch_rows, relation_exists
from pipeline.catalog import SLEEP_METRIC
from pipeline.infra.database import Connection


def daily_rows(conn: Connection, user_id: str, day: dt.date) -> list[Row]:
    return fetch_rows(
        conn,
        """SELECT metric, value, sum, count, min, max, latest_value, latest_at, flagged_count
           FROM marts.daily WHERE user_id = %s AND local_date = %s ORDER BY metric""",
        (user_id, day),
    )


def sleep_stage_minutes(conn: Connection, user_id: str, day: dt.date) -> list[Row]:
    """Minutes per stage of the nights that end on ``day`` (the wake-up day, as marts.daily counts sleep): the
    deduplicated sleep slices (those whose source won) inside each night's session. A night can start the day
    before, so slices of both days are read (the partition index finds them)."""
    return fetch_rows(
        conn,
        """SELECT s.stage, sum(s.value ORDER BY s.slice_start_utc) AS minutes
           FROM core.sleep_sessions n
           JOIN core.slices s ON s.user_id = n.user_id AND s.local_date BETWEEN n.local_date - 1 AND n.local_date
            AND s.metric = %s AND s.won
            AND s.slice_start_utc >= n.session_start_utc AND s.slice_end_utc <= n.session_end_utc
           WHERE n.user_id = %s AND n.local_date = %s AND s.stage IS NOT NULL
           GROUP BY s.stage ORDER BY s.stage""",
        (SLEEP_METRIC, user_id, day),
    )


def active_insight_count(conn: Connection, user_id: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM marts.insights WHERE user_id = %s AND status = 'active'", (user_id,)
    ).fetchone()
    return int(row[0]) if row else 0  # type: ignore[call-overload]


def day_health_score(conn: Connection, user_id: str, day: dt.date) -> Row | None:
    if not relation_exists(conn, "marts.health_scores"):
        return None
    rows = fetch_rows(
        conn,
        """SELECT local_date, score, activity, sleep, vitals, completeness, cohort_users, computed_at
           FROM marts.health_scores WHERE user_id = %s AND local_date = %s""",
        (user_id, day),
    )
    return rows[0] if rows else None


def freshness(conn: Connection, user_id: str) -> Row:
    """When the user's samples last landed (the latest finished ingest batch that landed any of theirs: their own
    imports and syncs, or a batch of several users holding some), when their days were last computed, and their
    latest local day up to their today with a daily value (what a dashboard opens on while today has none;
    marts.daily's key leads with the user). The two kinds of batch are looked up apart, each the newest first on the
    partial index ``ingest_batches_landed_by_user`` (one OR of both made PostgreSQL read every batch since the
    user's last one)."""
    return fetch_rows(
        conn,
        """SELECT (SELECT latest.finished_at FROM (
                     (SELECT b.batch_id, b.finished_at FROM app.ingest_batches b
                      WHERE b.user_id = %(u)s AND b.finished_at IS NOT NULL AND b.landed_count > 0
                      ORDER BY b.batch_id DESC LIMIT 1)
                     UNION ALL
                     (SELECT b.batch_id, b.finished_at FROM app.ingest_batches b
                      WHERE b.user_id IS NULL AND b.finished_at IS NOT NULL AND b.landed_count > 0
                        AND EXISTS (SELECT 1 FROM raw.samples s WHERE s.batch_id = b.batch_id AND s.user_id = %(u)s)
                      ORDER BY b.batch_id DESC LIMIT 1)) AS latest
                   ORDER BY latest.batch_id DESC LIMIT 1) AS last_landed_at,
                  (SELECT max(computed_at) FROM core.partition_stats WHERE user_id = %(u)s) AS last_computed_at,
                  (SELECT max(d.local_date) FROM marts.daily d JOIN app.users u USING (user_id)
                   WHERE d.user_id = %(u)s AND d.local_date <= (now() AT TIME ZONE u.home_timezone)::date
                  ) AS last_data_date""",
        {"u": user_id},
    )[0]


def step_goal(conn: Connection, user_id: str) -> int | None:
    """The user's own step goal (None: the catalogue's)."""
    row = conn.execute("SELECT step_goal FROM app.users WHERE user_id = %s", (user_id,)).fetchone()
    return None if row is None or row[0] is None else int(row[0])  # type: ignore[call-overload]
