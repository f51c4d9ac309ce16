"""A user's insights (marts.insights episodes) and their acknowledgement."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from api.queries.common import Row, fetch_rows
from pipeline.infra.database import Connection

_COLUMNS = """insight_id, rule, subject, severity, direction, message, recommendation, numbers, first_evaluated_day,
              last_evaluated_day, status, resolved_on, acknowledged_at, created_at, updated_at"""
_QUALIFIED = ", ".join(f"i.{column.strip()}" for column in _COLUMNS.split(","))


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


@dataclass(frozen=True)
class Acknowledged:
    row: Row
    first_time: bool  # False: it was acknowledged before, and nothing changed


def acknowledge(conn: Connection, user_id: str, insight_id: uuid.UUID) -> Acknowledged | None:
    """Mark the user's insight acknowledged (the first acknowledgement's time stays: idempotent). None when the user
    has no such insight, whoever else may."""
    rows = fetch_rows(
        conn,
        f"""WITH target AS (
                SELECT insight_id, acknowledged_at IS NULL AS first_time FROM marts.insights
                WHERE insight_id = %s AND user_id = %s FOR UPDATE
            )
            UPDATE marts.insights i SET acknowledged_at = coalesce(i.acknowledged_at, now())
            FROM target t WHERE i.insight_id = t.insight_id RETURNING t.first_time, {_QUALIFIED}""",
        (insight_id, user_id),
    )
    if not rows:
        return None
    first_time = bool(rows[0].pop("first_time"))
    return Acknowledged(rows[0], first_time)
