"""Pipeline-wide figures for admins: when each table was last computed, user-days materialized, rejections by
reason and how long landed data has been waiting for the pipeline. Each is one aggregate over a small table or an
indexed one (never a count of raw.samples)."""

from __future__ import annotations

from api.queries.common import Row, fetch_rows, relation_exists
from pipeline.infra.database import Connection

# asset -> (table, its column of when a row was written)
COMPUTED_AT = {
    "deduplicated_samples": ("core.partition_stats", "computed_at"),
    "insights": ("marts.insights", "updated_at"),
    "health_scores": ("marts.health_scores", "computed_at"),
}


def last_computed(conn: Connection) -> list[Row]:
    """Per asset, the latest time its table was written; None for a table not there yet or empty."""
    found = []
    for asset, (table, column) in COMPUTED_AT.items():
        at = None
        if relation_exists(conn, table):
            row = conn.execute(f"SELECT max({column}) FROM {table}".encode()).fetchone()
            at = row[0] if row else None
        found.append({"asset": asset, "table": table, "last_computed_at": at})
    return found


def user_days(conn: Connection) -> Row:
    return fetch_rows(conn, "SELECT count(*) AS user_days, count(DISTINCT user_id) AS users FROM core.partition_stats")[
        0
    ]


def rejections(conn: Connection) -> list[Row]:
    """Rejected samples by stage and reason, with their share of what that stage saw: at landing (raw.quarantine,
    of every record read by ingest batches) and at validation (core.rejections, of the raw rows of computed days)."""
    return fetch_rows(
        conn,
        """WITH seen AS (SELECT (SELECT sum(read_count) FROM app.ingest_batches) AS read,
                                (SELECT sum(raw_rows) FROM core.partition_stats) AS raw)
           SELECT 'landing' AS stage, q.reason, count(*) AS count, count(*) / nullif(max(seen.read), 0)::float8 AS rate
           FROM raw.quarantine q, seen GROUP BY q.reason
           UNION ALL
           SELECT 'validation', r.reason, count(*), count(*) / nullif(max(seen.raw), 0)::float8
           FROM core.rejections r, seen GROUP BY r.reason
           ORDER BY 1, 3 DESC, 2""",
    )


def ingest_lag(conn: Connection) -> Row:
    """Finished batches that landed samples after their user's days were last computed (a batch of several users:
    after any computation), and the age of the oldest: how long landed data has waited for the pipeline."""
    return fetch_rows(
        conn,
        """WITH computed AS (SELECT user_id, max(computed_at) AS at FROM core.partition_stats GROUP BY user_id),
           waiting AS (
               SELECT b.finished_at FROM app.ingest_batches b LEFT JOIN computed c ON c.user_id = b.user_id
               WHERE b.finished_at IS NOT NULL AND b.landed_count > 0
                 AND b.finished_at > coalesce(CASE WHEN b.user_id IS NULL THEN (SELECT max(at) FROM computed)
                                              ELSE c.at END, '-infinity'))
           SELECT count(*) AS waiting_batches, min(finished_at) AS oldest_waiting_since,
                  extract(epoch FROM now() - min(finished_at))::float8 AS lag_seconds FROM waiting""",
    )[0]
