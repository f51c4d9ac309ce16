"""Erasing a user (``healthpipe users delete``, ``DELETE /v1/me``; docs/privacy.md, "Erasure").

In order:
1. In one transaction: every row of the user in every table with a ``user_id`` column (``walk.py``: found in the
   catalogue, so a future table is included), API keys and share links with them, so the user's keys stop working
   and their links stop showing anything at once; then the audit row (``app.erasures``), which names no user.
   The transaction first waits for partition writes, scoring and insight evaluations in flight and holds new ones
   back until it commits (their advisory locks), so no half-written partition of the user survives it.
2. Once that has committed, the user's data key in the key store (`_destroy_data_key`: crypto-shredding); a
   repeated erasure of an id with no rows left still destroys a key an interrupted one left.
3. The user's partitions in Dagster (``dagster_partitions.py``).
4. What other users' results owe to the user: the cohort statistics and health scores of the days the user had data
   (``recompute.py``), then the audit row records the days recomputed.
Steps 3 and 4 write elsewhere (Dagster's storage, dbt's models) and run after the commit: if one fails, the rows
are already gone and the error says what is left to do.

The read API cannot answer from cached data of the user: its cache keys hold the user's id, data version and
creation time, the keys are gone (401) and share links are gone (404); a user created later under the same id is
another user to the cache.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

from psycopg.types.json import Jsonb
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from pipeline.accounts import AccountError
from pipeline.audit.entries import forget_user
from pipeline.erasure.dagster_partitions import DagsterRemoval, remove_user
from pipeline.erasure.recompute import affected_days, rebuild_cohort_days, rescore_days
from pipeline.erasure.walk import around_keys, delete_rows, sql_file, user_tables
from pipeline.infra.database import Connection, psycopg_connection
from pipeline.insights.evaluate import EVALUATION_LOCK
from pipeline.privacy import UNATTRIBUTED, destroy_user_key
from pipeline.samples.io import MARTS_BUILD_LOCK
from pipeline.scores.compute import SCORING_LOCK

CLI = "cli"


def requested_by_key(prefix: str) -> str:
    """``requested_by`` of an erasure asked for with an API key (its public prefix: not the key, not the user)."""
    return f"api-key:{prefix}"


class ErasureError(AccountError):
    """The user to erase does not exist (and nothing of them is left)."""


@dataclass(frozen=True)
class Erasure:
    erasure_id: int
    rows_removed: dict[str, int]  # schema.table -> rows of the user deleted
    data_key_destroyed: bool
    dagster: DagsterRemoval | None  # None: no Dagster instance given
    cohort_days: list[dt.date] = field(default_factory=list)  # days whose cohort statistics were rebuilt
    days_rescored: int = 0  # of those, days whose health scores were recomputed
    seconds: dict[str, float] = field(default_factory=dict)  # rows, dagster, cohort, scores

    @property
    def total_rows(self) -> int:
        return sum(self.rows_removed.values())


def _destroy_data_key(conn: Connection, user_id: str) -> bool:
    """Crypto-shredding: destroy the user's data key in the key store (`pipeline.privacy.destroy_user_key`), so that
    a copy of their encrypted fields left in a backup can no longer be read. Called once the transaction deleting
    the user's rows has committed: a failed deletion leaves readable rows that can be deleted again. True when the
    user had a key."""
    return destroy_user_key(conn, user_id)


def _erase_rows(conn: Connection, user_id: str, requested_by: str) -> tuple[int | None, dict[str, int], list[dt.date]]:
    """Delete the user's rows and record the erasure, in one transaction: (the erasure's id, rows removed per
    table, the local days the user had data). The id is None when nothing of the user was left: nothing is
    recorded then."""
    with conn.transaction():
        # Partition writes, scoring and insight evaluations write rows of every user and advance their versions:
        # wait for those in flight and hold new ones back (in a fixed order; none of them waits for another's lock
        # while holding its own), so none deadlocks on the user's rows with this transaction or writes them half.
        for lock in (MARTS_BUILD_LOCK, SCORING_LOCK, EVALUATION_LOCK):
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
        exists = conn.execute("SELECT 1 FROM app.users WHERE user_id = %s FOR UPDATE", (user_id,)).fetchone()
        days = affected_days(conn, user_id)
        forget_user(conn, user_id)  # the audit trail keeps that the user's data was read, no longer whose
        data_tables, keys, key_parents = around_keys(user_tables(conn))
        removed = delete_rows(conn, user_id, [*data_tables, *keys, *key_parents])
        if exists is None and not removed:
            return None, removed, days
        row = conn.execute(
            sql_file("record_erasure").encode(),
            {"requested_by": requested_by, "rows_removed": Jsonb(removed), "data_key_destroyed": False},
        ).fetchone()
    assert row is not None
    return int(row[0]), removed, days  # type: ignore[call-overload]


def _record_key_only(conn: Connection, requested_by: str) -> int:
    row = conn.execute(
        sql_file("record_erasure").encode(),
        {"requested_by": requested_by, "rows_removed": Jsonb({}), "data_key_destroyed": True},
    ).fetchone()
    assert row is not None
    return int(row[0])  # type: ignore[call-overload, no-any-return]


def erase_user(
    engine: Engine, user_id: str, *, requested_by: str, dagster_storage: URL | None, dbt_home: Path
) -> Erasure:
    """Erase ``user_id`` everywhere (see the module's docstring). ``requested_by``: `CLI` or `requested_by_key`;
    ``dagster_storage``: the Dagster instance's storage URL (None: no Dagster to clean); ``dbt_home``: where dbt's
    target folders live (the runs' ``<dagster home>/dbt``)."""
    if user_id == UNATTRIBUTED:
        # the rows of quarantined lines that named no user, and their shared key: not a user's (no user id has ':')
        raise ErasureError(f"{user_id!r} is not a user id: it stands for quarantined lines that name no user")
    seconds: dict[str, float] = {}
    started = time.perf_counter()

    def lap(phase: str) -> None:
        nonlocal started
        seconds[phase] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()

    with psycopg_connection(engine) as conn:
        erasure_id, removed, days = _erase_rows(conn, user_id, requested_by)
        destroyed = _destroy_data_key(conn, user_id)
        if erasure_id is None:
            if not destroyed:
                raise ErasureError(f"no user {user_id!r}: nothing is held about them (already erased?)")
            # an erasure interrupted after its rows went: its key is gone now too
            erasure_id = _record_key_only(conn, requested_by)
        elif destroyed:
            conn.execute("UPDATE app.erasures SET data_key_destroyed = true WHERE erasure_id = %s", (erasure_id,))
    lap("rows")
    dagster = remove_user(dagster_storage, user_id) if dagster_storage is not None else None
    if dagster is not None:
        with psycopg_connection(engine) as conn:
            conn.execute(
                "UPDATE app.erasures SET dagster_partitions = %s WHERE erasure_id = %s",
                (dagster.partition_keys, erasure_id),
            )
    lap("dagster")
    rebuilt = rebuild_cohort_days(engine, days, dbt_home)
    lap("cohort")
    rescored = rescore_days(engine, days)
    with psycopg_connection(engine) as conn:
        conn.execute(
            "UPDATE app.erasures SET days_recomputed = %s, recomputed_at = now() WHERE erasure_id = %s",
            (len(days), erasure_id),
        )
    lap("scores")
    return Erasure(erasure_id, removed, destroyed, dagster, list(days) if rebuilt else [], rescored, seconds)
