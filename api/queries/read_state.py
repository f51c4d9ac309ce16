"""What a read route needs before it can answer from the cache: the user's data version and local today, in one
statement (two primary-key lookups)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pipeline.infra.database import Connection


@dataclass(frozen=True)
class ReadState:
    version: int  # app.user_data_versions; 0 before any write
    today: dt.date  # the calendar date now on the user's home zone's wall clock
    user_since: str = ""  # when the user was created (microseconds since 1970): tells a re-created id apart


def read_state(conn: Connection, user_id: str) -> ReadState | None:
    """None for a user that does not exist."""
    row = conn.execute(
        """SELECT coalesce(v.version, 0), (now() AT TIME ZONE u.home_timezone)::date,
                  (extract(epoch FROM u.created_at) * 1000000)::bigint
           FROM app.users u LEFT JOIN app.user_data_versions v ON v.user_id = u.user_id
           WHERE u.user_id = %s""",
        (user_id,),
    ).fetchone()
    if row is None:
        return None
    version, today, since = row
    assert isinstance(version, int) and isinstance(today, dt.date)
    return ReadState(version, today, str(since))
