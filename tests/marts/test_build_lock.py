"""A marts build and the partition writes of other runs take turns: while a build holds its lock, a run replacing
core or marts partitions waits (so the build's tests check the rows its models were built from), and goes on once
the build is done."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable

import pandas as pd
from sqlalchemy.engine import URL

from pipeline.infra.database import create_warehouse_engine, psycopg_connection
from pipeline.infra.migrations import migrate
from pipeline.marts.scope import one_build_at_a_time
from pipeline.samples.io import MARTS_BUILD_LOCK, arrow_connection
from pipeline.samples.process import aggregate_partitions


def _waiting_for_the_build_lock(url: URL) -> int:
    engine = create_warehouse_engine(url)
    try:
        with psycopg_connection(engine) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = %s",
                (MARTS_BUILD_LOCK,),
            ).fetchone()
            return int(row[0]) if row else 0
    finally:
        engine.dispose()


def test_a_daily_write_waits_for_a_marts_build_and_then_lands(make_database: Callable[[], URL]) -> None:
    url = make_database()
    migrate(url)
    engine = create_warehouse_engine(url)
    with psycopg_connection(engine) as conn:
        conn.execute("INSERT INTO app.users (user_id, home_timezone) VALUES ('u1', 'UTC')")
        conn.execute(
            "INSERT INTO marts.daily (user_id, local_date, metric, value, sum, count) "
            "VALUES ('u1', '2024-05-01', 'STEPS', 5, 5, 1)"
        )
    user_days = pd.DataFrame({"user_id": ["u1"], "local_date": [dt.date(2024, 5, 1)]})
    finished = threading.Event()

    def write_daily() -> None:
        with arrow_connection(url) as conn:
            aggregate_partitions(conn, user_days, "daily")  # no slices: the day's row is replaced by none
        finished.set()

    with one_build_at_a_time(engine):
        writer = threading.Thread(target=write_daily)
        writer.start()
        deadline = time.monotonic() + 30
        while _waiting_for_the_build_lock(url) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _waiting_for_the_build_lock(url) == 1  # the write asks for the lock and is not granted it
        assert not finished.is_set()
        with psycopg_connection(engine) as conn:  # the build still sees the rows it was built from
            assert conn.execute("SELECT count(*) FROM marts.daily").fetchone() == (1,)
    writer.join(timeout=30)
    assert finished.is_set()
    with psycopg_connection(engine) as conn:
        assert conn.execute("SELECT count(*) FROM marts.daily").fetchone() == (0,)
    engine.dispose()
