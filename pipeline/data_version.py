"""Per-user data versions (``app.user_data_versions``): a counter each write that changes a user's answers advances.

The read API builds ETags and cache keys from it. Writers call `advance` in the same transaction as their write, so
a reader never sees new data under an old version (nor, once committed, an old answer under a new one). A user with
no row reads as version 0: nothing written yet."""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.infra.database import Connection

_UPSERT = "ON CONFLICT (user_id) DO UPDATE SET version = v.version + 1, changed_at = now()"
_ADVANCE_SQL = f"""
INSERT INTO app.user_data_versions AS v (user_id)
SELECT u FROM unnest(%s::text[]) AS u
{_UPSERT}
"""


def advance(conn: Connection, user_ids: Iterable[str]) -> None:
    """Advance the data version of each of ``user_ids`` (one statement, users locked in a fixed order so concurrent
    writers over overlapping users cannot deadlock)."""
    users = sorted(set(user_ids))
    if users:
        conn.execute(_ADVANCE_SQL, (users,))


def advance_sql(users_query: str) -> str:
    """The statement advancing every user that ``users_query`` (SQL selecting a ``user_id`` column: a staged table
    of a write, a subquery; composed by the caller, never input) names, each once, in user order like `advance`.
    For writers that already hold their users in a table (ADBC connections, ``app.run_user_days``). Run it as the
    transaction's last statement: the version rows stay locked only until the commit, and a writer never waits for
    another lock while holding them."""
    return f"""INSERT INTO app.user_data_versions AS v (user_id)
SELECT DISTINCT user_id FROM ({users_query}) AS named ORDER BY user_id
{_UPSERT}"""


def current(conn: Connection, user_id: str) -> int:
    """The user's data version; 0 before any write."""
    row = conn.execute("SELECT version FROM app.user_data_versions WHERE user_id = %s", (user_id,)).fetchone()
    if row is None:
        return 0
    version = row[0]
    assert isinstance(version, int)
    return version
