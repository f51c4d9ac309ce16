"""What a range run hands to its dbt build: its user-days in ``app.run_user_days`` under its run id (the incremental
models recompute what those touch), and one build at a time across concurrent runs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd
from sqlalchemy import Engine

from pipeline.data_version import advance_sql
from pipeline.infra.database import psycopg_connection
from pipeline.samples.io import MARTS_BUILD_LOCK

# A run that died without deleting its rows leaves them behind; rows this old belong to no running run.
STALE_AFTER = dt.timedelta(days=1)


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
    """Holds `MARTS_BUILD_LOCK` exclusively while the block runs: concurrent range runs build the marts one after the
    other (a build is short next to the run; two at once would race on the days both touch in cohort_daily, and on
    the first creation of a table), and no run replaces core or marts partitions meanwhile, so the build's tests
    check the rows its models were built from."""
    with psycopg_connection(engine) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MARTS_BUILD_LOCK,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MARTS_BUILD_LOCK,))


def advance_run_users(engine: Engine, run_id: str) -> None:
    """Advance the data version of the users of the run's user-days (one statement): the dbt models commit as they
    build, so the read API's answers of those users (weeks, months, sources) may have changed."""
    with psycopg_connection(engine) as conn:
        conn.execute(advance_sql("SELECT user_id FROM app.run_user_days WHERE run_id = %s").encode(), (run_id,))
