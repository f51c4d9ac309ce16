"""What a range run hands to its dbt build: its user-days in ``app.run_user_days`` under its run id (the incremental
models recompute what those touch), and one build at a time across concurrent runs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd
from sqlalchemy import Engine

from pipeline.infra.database import psycopg_connection

# A run that died without deleting its rows leaves them behind; rows this old belong to no running run.
STALE_AFTER = dt.timedelta(days=1)
_BUILD_LOCK = 0x4D41_5254  # "MART": one dbt build at a time (cohort_daily rows of a day are shared by all users)


@contextmanager
def run_scope(engine: Engine, run_id: str, user_days: pd.DataFrame) -> Iterator[None]:
    """``user_days`` (user_id, local_date) in ``app.run_user_days`` under ``run_id`` while the block runs."""
    users = user_days["user_id"].astype(str).tolist()
    days = user_days["local_date"].tolist()
    with psycopg_connection(engine) as conn, conn.transaction():
        conn.execute(
            "DELETE FROM app.run_user_days WHERE run_id = %s OR created_at < now() - %s", (run_id, STALE_AFTER)
        )
        conn.execute(
            "INSERT INTO app.run_user_days (run_id, user_id, local_date) "
            "SELECT %s, u, d FROM unnest(%s::text[], %s::date[]) AS t(u, d)",
            (run_id, users, days),
        )
    try:
        yield
    finally:
        with psycopg_connection(engine) as conn:
            conn.execute("DELETE FROM app.run_user_days WHERE run_id = %s", (run_id,))


@contextmanager
def one_build_at_a_time(engine: Engine) -> Iterator[None]:
    """Holds a session advisory lock while the block runs: concurrent range runs build the marts one after the other
    (a build is short next to the run; two at once would race on the days both touch in cohort_daily, and on the
    first creation of a table)."""
    with psycopg_connection(engine) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_BUILD_LOCK,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_BUILD_LOCK,))
