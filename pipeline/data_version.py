"""Per-user data versions (``app.user_data_versions``): a counter each write that changes a user's answers advances.

The read API builds ETags and cache keys from it. Writers call `advance` in the same transaction as their write, so
a reader never sees new data under an old version (nor, once committed, an old answer under a new one). A user with
no row reads as version 0: nothing written yet."""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.infra.database import Connection

_ADVANCE_SQL = """
INSERT INTO app.user_data_versions AS v (user_id)
SELECT u FROM unnest(%s::text[]) AS u
ON CONFLICT (user_id) DO UPDATE SET version = v.version + 1, changed_at = now()
"""


def advance(conn: Connection, user_ids: Iterable[str]) -> None:
    """Advance the data version of each of ``user_ids`` (one statement, users locked in a fixed order so concurrent
    writers over overlapping users cannot deadlock)."""
    users = sorted(set(user_ids))
    if users:
        conn.execute(_ADVANCE_SQL, (users,))


def current(conn: Connection, user_id: str) -> int:
    """The user's data version; 0 before any write."""
    row = conn.execute("SELECT version FROM app.user_data_versions WHERE user_id = %s", (user_id,)).fetchone()
    if row is None:
        return 0
    version = row[0]
    assert isinstance(version, int)
    return version
