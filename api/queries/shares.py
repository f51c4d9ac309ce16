"""Share links (app.shares): create, list and revoke a user's, and find the live share of a code. Every write
advances the owner's data version in its own transaction (pipeline/data_version.py)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from api.queries.common import Row, fetch_rows
from api.share_codes import code_hash, new_code
from pipeline import data_version
from pipeline.infra.database import Connection

# A share as its owner sees it; `status` derived at read time (revoked wins over expired).
_COLUMNS = """share_id AS id, recipient, metrics AS types, start_date AS start, end_date AS "end", created_at,
              expires_at, revoked_at,
              CASE WHEN revoked_at IS NOT NULL THEN 'revoked' WHEN expires_at <= now() THEN 'expired'
                   ELSE 'active' END AS status"""


def create_share(
    conn: Connection,
    user_id: str,
    recipient: str,
    metrics: Sequence[str],
    start: dt.date,
    end: dt.date,
    expires_in_days: int,
) -> tuple[Row, str] | None:
    """A new share of the user's and its code (the only time the code exists outside the caller); None when the user
    does not exist (deleted since its key authenticated)."""
    code = new_code()
    with conn.transaction():
        rows = fetch_rows(
            conn,
            f"""INSERT INTO app.shares (user_id, recipient, metrics, start_date, end_date, expires_at, code_hash)
                SELECT user_id, %(recipient)s, %(metrics)s, %(start)s, %(end)s,
                       now() + make_interval(days => %(days)s), %(hash)s
                FROM app.users WHERE user_id = %(user)s
                RETURNING {_COLUMNS}""",
            {
                "user": user_id,
                "recipient": recipient,
                "metrics": list(metrics),
                "start": start,
                "end": end,
                "days": expires_in_days,
                "hash": code_hash(code),
            },
        )
        if not rows:
            return None
        data_version.advance(conn, [user_id])
    return rows[0], code


def user_shares(conn: Connection, user_id: str) -> list[Row]:
    """Every share of the user, live and past, newest first."""
    return fetch_rows(
        conn,
        f"SELECT {_COLUMNS} FROM app.shares WHERE user_id = %s ORDER BY created_at DESC, share_id",
        (user_id,),
    )


def revoke_share(conn: Connection, user_id: str, share_id: uuid.UUID) -> bool:
    """Revoke the user's share (again: nothing changes, the first revocation's time stays). False when the user has no
    such share, whoever else may."""
    with conn.transaction():
        row = conn.execute(
            "SELECT revoked_at IS NULL FROM app.shares WHERE share_id = %s AND user_id = %s FOR UPDATE",
            (share_id, user_id),
        ).fetchone()
        if row is None:
            return False
        if row[0]:
            conn.execute("UPDATE app.shares SET revoked_at = now() WHERE share_id = %s", (share_id,))
            data_version.advance(conn, [user_id])
    return True


def live_share(conn: Connection, code: str) -> Row | None:
    """The share of ``code`` while it is neither expired nor revoked; None otherwise (one statement, whichever the
    reason, so an unknown, an expired and a revoked code take the same path)."""
    rows = fetch_rows(
        conn,
        """SELECT share_id, user_id, metrics, start_date, end_date, expires_at FROM app.shares
           WHERE code_hash = %s AND revoked_at IS NULL AND expires_at > now()""",
        (code_hash(code),),
    )
    return rows[0] if rows else None
