"""Aggregates of one user over a range of local days, from the marts of the requested period."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from api.queries.common import Row, fetch_rows, relation_exists
from pipeline.infra.database import Connection

# period -> (table, its start column rendered as the point's period start, the range filter)
_SOURCES = {
    "hour": (
        "marts.hourly",
        "to_char(local_hour, 'YYYY-MM-DD\"T\"HH24:MI:SS') AS period_start, hour_start_utc, NULL::integer AS days",
        "local_date BETWEEN %(start)s AND %(end)s",
        "hour_start_utc",
    ),
    "day": (
        "marts.daily",
        "local_date::text AS period_start, NULL::timestamptz AS hour_start_utc, NULL::integer AS days",
        "local_date BETWEEN %(start)s AND %(end)s",
        "local_date",
    ),
    "week": (
        "marts.weekly",
        "week_start::text AS period_start, NULL::timestamptz AS hour_start_utc, days_with_data AS days",
        "week_start BETWEEN date_trunc('week', %(start)s::date)::date AND %(end)s",
        "week_start",
    ),
    "month": (
        "marts.monthly",
        "month_start::text AS period_start, NULL::timestamptz AS hour_start_utc, days_with_data AS days",
        "month_start BETWEEN date_trunc('month', %(start)s::date)::date AND %(end)s",
        "month_start",
    ),
}


def aggregate_rows(
    conn: Connection, user_id: str, metrics: Sequence[str], period: str, start: dt.date, end: dt.date
) -> list[Row]:
    """The user's rows of ``metrics`` in the period's mart, ordered by metric and time. Weeks and months are those
    starting in the range or overlapping its first day. No rows while the mart is not built yet."""
    table, columns, where, order = _SOURCES[period]
    if not relation_exists(conn, table):
        return []
    return fetch_rows(
        conn,
        f"""SELECT metric, {columns}, value, sum, count, min, max, flagged_count
            FROM {table} WHERE user_id = %(user)s AND metric = ANY(%(metrics)s) AND {where}
            ORDER BY metric, {order}""",
        {"user": user_id, "metrics": list(metrics), "start": start, "end": end},
    )
