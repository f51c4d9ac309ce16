"""Aggregates of one user over a range of local days, from the marts of the requested period, as the JSON the
routes answer: the database builds each series' points (`Series` and `AggregatePoint` in api/schemas/reads.py, keys
in camelCase), so a year of days costs no Python object per point. Shared by the aggregates route and the public
view of a share link, so both answer points of one shape."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from api.queries.common import relation_exists
from pipeline.catalog import METRICS
from pipeline.infra.database import Connection

# period -> (table, the point's period start, its UTC hour start, its days with data, the range filter, the order);
# an instant renders as pydantic renders a UTC datetime (2024-05-01T10:00:00Z)
_SOURCES = {
    "hour": (
        "marts.hourly",
        "to_char(local_hour, 'YYYY-MM-DD\"T\"HH24:MI:SS')",
        "to_char(hour_start_utc AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
        "NULL::integer",
        "local_date BETWEEN %(start)s AND %(end)s",
        "hour_start_utc",
    ),
    "day": (
        "marts.daily",
        "local_date::text",
        "NULL",
        "NULL::integer",
        "local_date BETWEEN %(start)s AND %(end)s",
        "local_date",
    ),
    "week": (
        "marts.weekly",
        "week_start::text",
        "NULL",
        "days_with_data",
        "week_start BETWEEN date_trunc('week', %(start)s::date)::date AND %(end)s",
        "week_start",
    ),
    "month": (
        "marts.monthly",
        "month_start::text",
        "NULL",
        "days_with_data",
        "month_start BETWEEN date_trunc('month', %(start)s::date)::date AND %(end)s",
        "month_start",
    ),
}
# built by the database in the first place (marts.daily and hourly are the migrations'; weekly and monthly appear
# with the first dbt build: until then the routes answer empty series, not a 500)
_ALWAYS_THERE = {"marts.daily", "marts.hourly"}


def _series_query(period: str) -> bytes:
    table, period_start, hour_start_utc, days, where, order = _SOURCES[period]
    return f"""WITH wanted AS (
                   SELECT w.metric, w.unit, w.aggregation, w.ord
                   FROM unnest(%(metrics)s::text[], %(units)s::text[], %(aggregations)s::text[])
                        WITH ORDINALITY AS w(metric, unit, aggregation, ord)),
               points AS (
                   SELECT metric, json_agg(json_build_object(
                              'periodStart', {period_start}, 'hourStartUtc', {hour_start_utc}, 'value', value,
                              'sum', sum, 'count', count, 'min', min, 'max', max, 'flaggedCount', flagged_count,
                              'daysWithData', {days}) ORDER BY {order}) AS points, count(*) AS n
                   FROM {table} WHERE user_id = %(user)s AND metric = ANY(%(metrics)s) AND {where}
                   GROUP BY metric)
               SELECT coalesce(json_object_agg(w.metric, json_build_object(
                          'unit', w.unit, 'aggregation', w.aggregation, 'points', coalesce(p.points, '[]'::json))
                          ORDER BY w.ord), '{{}}'::json)::text, coalesce(sum(p.n), 0)::integer
               FROM wanted w LEFT JOIN points p USING (metric)""".encode()


_QUERIES = {period: _series_query(period) for period in _SOURCES}


def series_json(
    conn: Connection, user_id: str, metrics: Sequence[str], period: str, start: dt.date, end: dt.date
) -> tuple[bytes, int]:
    """A JSON object with a series for each of ``metrics`` (catalogue names), in that order, each with the unit,
    the aggregation and the points oldest first (empty where the user has none). Weeks and months are those starting
    in the range or overlapping its first day. With the number of points in all."""
    units = [METRICS[name].canonical_unit for name in metrics]
    aggregations = [METRICS[name].strategy.value for name in metrics]
    table = _SOURCES[period][0]
    if table not in _ALWAYS_THERE and not relation_exists(conn, table):
        series = zip(metrics, units, aggregations, strict=True)
        empty = {name: {"unit": unit, "aggregation": how, "points": []} for name, unit, how in series}
        return json.dumps(empty).encode(), 0
    params = {
        "user": user_id,
        "metrics": list(metrics),
        "units": units,
        "aggregations": aggregations,
        "start": start,
        "end": end,
    }
    row = conn.execute(_QUERIES[period], params).fetchone()
    assert row is not None
    return str(row[0]).encode(), int(row[1])  # type: ignore[call-overload]
