"""The day summary: one user's daily marts row per metric, the night's sleep stages, active insights, the day's
health score and how fresh the user's data is, read in one statement (sql/summary.sql)."""

from __future__ import annotations

import datetime as dt
from functools import cache
from importlib import resources

from api.queries.common import Row, fetch_rows
from pipeline.catalog import SLEEP_METRIC
from pipeline.infra.database import Connection


@cache
def _summary_sql() -> bytes:
    return (resources.files("api.queries") / "sql" / "summary.sql").read_bytes()


def day_summary(conn: Connection, user_id: str, day: dt.date) -> Row:
    """``metrics`` (dicts of metric, value, count, min, max, flagged_count; by name), ``step_goal`` (the user's own,
    or None), ``stages`` (dicts of stage and minutes; by stage), ``health_score`` (a dict, or None),
    ``active_insights``, ``last_landed_at``, ``last_computed_at`` and ``last_data_date``."""
    return fetch_rows(conn, _summary_sql(), {"user": user_id, "day": day, "sleep": SLEEP_METRIC})[0]
