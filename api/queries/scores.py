"""Health scores (marts.health_scores) and the day's per-source contributions (marts.source_contributions)."""

from __future__ import annotations

import datetime as dt

from api.queries.common import Row, fetch_rows, relation_exists
from pipeline.infra.database import Connection


def health_scores(conn: Connection, user_id: str, start: dt.date, end: dt.date) -> list[Row]:
    """Oldest first; none while the health score asset has never run."""
    if not relation_exists(conn, "marts.health_scores"):
        return []
    return fetch_rows(
        conn,
        """SELECT local_date, score, activity, sleep, vitals, completeness, cohort_users, computed_at
           FROM marts.health_scores WHERE user_id = %s AND local_date BETWEEN %s AND %s ORDER BY local_date""",
        (user_id, start, end),
    )


def source_contributions(conn: Connection, user_id: str, day: dt.date) -> list[Row]:
    """Per metric, the sources by what they kept (most first); none while the dbt marts were never built."""
    if not relation_exists(conn, "marts.source_contributions"):
        return []
    return fetch_rows(
        conn,
        """SELECT metric, source_name, device_class, raw_total, kept_total, kept_share
           FROM marts.source_contributions WHERE user_id = %s AND local_date = %s
           ORDER BY metric, kept_total DESC, source_name, device_class""",
        (user_id, day),
    )
