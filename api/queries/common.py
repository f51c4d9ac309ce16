"""What every read query shares: rows as dicts, tables that may not exist yet, and a user's local today."""

from __future__ import annotations

import datetime as dt
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row

from pipeline.infra.database import Connection

Row = dict[str, Any]


def fetch_rows(
    conn: Connection, query: str | bytes | sql.Composed, params: tuple[Any, ...] | dict[str, Any] = ()
) -> list[Row]:
    with conn.cursor(row_factory=dict_row) as cursor:
        cursor.execute(query.encode() if isinstance(query, str) else query, params)
        return cursor.fetchall()


def relation_exists(conn: Connection, name: str) -> bool:
    """Whether ``schema.table`` exists. The dbt marts (weekly, monthly, source_contributions) appear with the first
    dbt build and marts.health_scores with its own asset: until then the routes reading them answer no data (not a
    500)."""
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
    return bool(row and row[0])


def local_today(conn: Connection, user_id: str) -> dt.date | None:
    """The calendar date now on the user's home zone's wall clock; None for an unknown user."""
    row = conn.execute(
        "SELECT (now() AT TIME ZONE home_timezone)::date FROM app.users WHERE user_id = %s", (user_id,)
    ).fetchone()
    return None if row is None else row[0]  # type: ignore[return-value]
