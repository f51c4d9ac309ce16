"""Incremental marts: a late batch rebuilds only the user-weeks, user-months, user-days and days its user-days touch
(every other row keeps its row version, xmin: it was not rewritten), and a full refresh gives the same tables as the
sequence of incremental runs (checksums)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from pipeline.infra.database import create_warehouse_engine, psycopg_connection
from pipeline.infra.migrations import migrate
from pipeline.ingest.landing import split_for_landing
from pipeline.ingest.store import create_batch, finish_batch, land_chunk
from pipeline.samples.io import sql
from pipeline.samples.runner import aggregate_user_days, deduplicate_user_days
from pipeline.synthetic.generator import SyntheticConfig, generate
from pipeline.synthetic.load import load_accounts
from tests.support.marts import build_full, build_incremental, checksums

KEYS = {
    "marts.weekly": ["user_id", "metric", "week_start"],
    "marts.monthly": ["user_id", "metric", "month_start"],
    "marts.daily_wide": ["user_id", "local_date"],
    "marts.cohort_daily": ["local_date", "metric"],
}
SCOPES = {  # the part of a table's key a run's user-days decide: its user-weeks, user-months, user-days, days
    "marts.weekly": ["user_id", "week_start"],
    "marts.monthly": ["user_id", "month_start"],
    "marts.daily_wide": ["user_id", "local_date"],
    "marts.cohort_daily": ["local_date"],
}


def land(engine: Engine, batch: pd.DataFrame) -> int:
    with psycopg_connection(engine) as conn:
        batch_id = create_batch(conn, None, "synthetic", "test")
        finish_batch(conn, batch_id, land_chunk(conn, batch_id, split_for_landing(batch)))
    return batch_id


def compute(engine: Engine, user_days: pd.DataFrame) -> None:
    deduplicate_user_days(engine.url, user_days)
    aggregate_user_days(engine.url, user_days, "hourly")
    aggregate_user_days(engine.url, user_days, "daily")


def versions(engine: Engine, name: str) -> pd.DataFrame:
    """Each row's key, its row version (xmin) and its contents."""
    keys = KEYS[name]
    with psycopg_connection(engine) as conn:
        cursor = conn.execute(f"SELECT {', '.join(keys)}, xmin::text AS version, t::text AS row FROM {name} t".encode())
        frame = pd.DataFrame(cursor.fetchall(), columns=[*keys, "version", "row"])
    return frame.set_index(keys).sort_index()


def test_a_late_batch_rebuilds_only_what_it_touches_and_a_full_refresh_agrees(
    make_database,
    tmp_path: pytest.TempPathFactory,  # type: ignore[no-untyped-def]
) -> None:
    url: URL = make_database()
    migrate(url)
    engine = create_warehouse_engine(url)
    dataset = generate(SyntheticConfig(users=3, days=10, start=dt.date(2024, 3, 25), seed=5))
    load_accounts(engine, dataset)
    batches = dataset.batches
    for batch in batches[:-3]:
        last_early = land(engine, batch)
    user_days = dataset.truth[["user_id", "local_date"]]
    compute(engine, user_days)
    for _, days in user_days.groupby("user_id"):  # a run per user, the first one creating the tables
        build_incremental(engine, url, tmp_path, days)
    before = {name: versions(engine, name) for name in KEYS}

    for batch in batches[-3:]:
        last_late = land(engine, batch)
    with engine.connect() as conn:
        touched = pd.DataFrame(
            conn.exec_driver_sql(sql("affected_user_days"), {"after": last_early, "upto": last_late}).all(),
            columns=["user_id", "local_date", "still_open"],
        )
    late = touched.merge(user_days, on=["user_id", "local_date"])[["user_id", "local_date"]].drop_duplicates()
    assert 0 < len(late) < len(user_days)
    compute(engine, late)
    build_incremental(engine, url, tmp_path, late)
    after = {name: versions(engine, name) for name in KEYS}

    dates = pd.to_datetime(late["local_date"])
    touched_keys = late.assign(
        week_start=(dates - pd.to_timedelta(dates.dt.weekday, unit="D")).dt.date,
        month_start=dates.dt.to_period("M").dt.start_time.dt.date,
    )
    for name in KEYS:
        old, new = before[name], after[name]
        columns = SCOPES[name]
        scope = (
            pd.MultiIndex.from_frame(touched_keys[columns].drop_duplicates())
            if len(columns) > 1
            else pd.Index(touched_keys[columns[0]].unique())
        )
        in_scope = new.index.droplevel([k for k in KEYS[name] if k not in SCOPES[name]]).isin(scope)
        untouched = new[~in_scope]
        # every row outside what the late batch touches is the very row version written before
        pd.testing.assert_frame_equal(untouched, old.reindex(untouched.index), obj=name)
        rewritten = new[in_scope]
        assert len(untouched) > 0 and len(rewritten) > 0, name
        assert not rewritten["version"].isin(old["version"]).any(), name
    changed = after["marts.weekly"]["row"].ne(before["marts.weekly"]["row"].reindex(after["marts.weekly"].index))
    assert changed.any()  # the late samples changed some week

    incremental = checksums(engine)
    build_full(url, tmp_path)
    assert checksums(engine) == incremental
    engine.dispose()
