"""What the FHIR Observations are made of: a user's daily marts rows over a range, each with the zone its local day
was in. Read by the API's FHIR routes and by the export."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from psycopg.rows import class_row

from pipeline.fhir.observations import DailyValue
from pipeline.infra.database import Connection


def daily_values(
    conn: Connection, user_id: str, metrics: Sequence[str], start: dt.date, end: dt.date
) -> list[DailyValue]:
    """The user's ``marts.daily`` rows of ``metrics`` from ``start`` to ``end`` (both included), by day then metric.
    A day's zone: the user's zone history at noon UTC of that date (the zone they were in for most of a day that
    has one), else their home zone."""
    with conn.cursor(row_factory=class_row(DailyValue)) as cursor:
        return cursor.execute(
            """SELECT d.local_date, d.metric, d.value, d.count, d.flagged_count,
                      coalesce((SELECT t.timezone FROM app.user_timezones t
                                WHERE t.user_id = d.user_id
                                  AND t.valid_from <= (d.local_date + time '12:00') AT TIME ZONE 'UTC'
                                ORDER BY t.valid_from DESC LIMIT 1), u.home_timezone) AS timezone
               FROM marts.daily d JOIN app.users u ON u.user_id = d.user_id
               WHERE d.user_id = %s AND d.local_date BETWEEN %s AND %s AND d.metric = ANY(%s)
               ORDER BY d.local_date, d.metric""",
            (user_id, start, end, list(metrics)),
        ).fetchall()
