"""A user's insights (marts.insights episodes) and their acknowledgement."""

from __future__ import annotations

import uuid

from api.queries.common import Row, fetch_rows
from pipeline.infra.database import Connection

_COLUMNS = """insight_id, rule, subject, severity, direction, message, recommendation, numbers, first_evaluated_day,
              last_evaluated_day, status, resolved_on, acknowledged_at, created_at, updated_at"""


def user_insights(conn: Connection, user_id: str, status: str | None) -> list[Row]:
    """Newest first (latest day it held, then severity); ``status`` None: every status."""
    return fetch_rows(
        conn,
        f"""SELECT {_COLUMNS} FROM marts.insights
            WHERE user_id = %(user)s AND (%(status)s::text IS NULL OR status = %(status)s)
            ORDER BY last_evaluated_day DESC, array_position(ARRAY['high', 'medium', 'low'], severity),
                     rule, subject""",
        {"user": user_id, "status": status},
    )


def acknowledge(conn: Connection, user_id: str, insight_id: uuid.UUID) -> Row | None:
    """Mark the user's insight acknowledged (the first acknowledgement's time stays: idempotent). None when the user
    has no such insight, whoever else may."""
    rows = fetch_rows(
        conn,
        f"""UPDATE marts.insights SET acknowledged_at = coalesce(acknowledged_at, now())
            WHERE insight_id = %s AND user_id = %s RETURNING {_COLUMNS}""",
        (insight_id, user_id),
    )
    return rows[0] if rows else None
