"""What a read route needs before it can answer from the cache: the user's data version and local today. For a
user key, they come with the key's lookup, in the same statement (`authenticated`): a cached answer then costs one
statement in all."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pipeline.accounts import Principal, key_hash_of, touch_key
from pipeline.infra.database import Connection


@dataclass(frozen=True)
class ReadState:
    version: int  # app.user_data_versions; 0 before any write
    today: dt.date  # the calendar date now on the user's home zone's wall clock
    user_since: str = ""  # when the user was created (microseconds since 1970): tells a re-created id apart


@dataclass(frozen=True)
class Authenticated:
    """A valid key's principal and, for a user key, its user's read state (None for an admin key)."""

    principal: Principal
    own_state: ReadState | None


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


def authenticated(conn: Connection, key: str) -> Authenticated | None:
    """The principal of a valid, unrevoked key with its user's read state, in one statement; None for any other
    key. ``last_used_at`` is refreshed at most once a minute."""
    key_hash = key_hash_of(key)
    if key_hash is None:
        return None
    row = conn.execute(
        """SELECT k.key_id, k.user_id, k.is_admin,
                  k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute',
                  coalesce(v.version, 0), (now() AT TIME ZONE u.home_timezone)::date,
                  (extract(epoch FROM u.created_at) * 1000000)::bigint
           FROM app.api_keys k
           LEFT JOIN app.users u ON u.user_id = k.user_id
           LEFT JOIN app.user_data_versions v ON v.user_id = k.user_id
           WHERE k.key_hash = %s AND k.revoked_at IS NULL""",
        (key_hash,),
    ).fetchone()
    if row is None:
        return None
    key_id, user_id, is_admin, stale, version, today, since = row
    if stale:
        touch_key(conn, int(key_id))  # type: ignore[call-overload]
    principal = Principal(int(key_id), user_id, bool(is_admin))  # type: ignore[call-overload, arg-type]
    # no state for an admin key (no user)
    state = ReadState(int(version), today, str(since)) if today is not None else None  # type: ignore[call-overload, arg-type]
    return Authenticated(principal, state)
