"""The pipeline on PostgreSQL: synthetic data through the core and mart tables; idempotent, exact per partition,
atomic under failure; and the same through Dagster (assets, checks, sensor)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pandas as pd
import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from pipeline.infra.database import create_warehouse_engine, libpq_url, psycopg_connection
from pipeline.infra.migrations import migrate
from pipeline.samples import process
from pipeline.samples.io import arrow_connection, transaction
from pipeline.samples.process import deduplicate_partitions
from pipeline.samples.runner import aggregate_user_days, deduplicate_user_days
from pipeline.synthetic.generator import SyntheticConfig, SyntheticDataset, generate
from pipeline.synthetic.load import load_dataset

OUTPUT_TABLES = (
    "core.rejections",
    "core.slices",
    "core.readings",
    "core.sleep_sessions",
    "core.source_totals",
    "marts.hourly",
    "marts.daily",
)


def run_all(engine: Engine, user_days: pd.DataFrame, chunk_size: int = 7) -> None:
    """The assets' path: chunks loaded, computed and written overlapped (7 user-days each: several chunks here)."""
    deduplicate_user_days(engine.url, user_days, chunk_size=chunk_size)
    aggregate_user_days(engine.url, user_days, "hourly", chunk_size=chunk_size)
    aggregate_user_days(engine.url, user_days, "daily", chunk_size=chunk_size)


def snapshot(engine: Engine, table: str, user_id: str | None = None, day: dt.date | None = None) -> pd.DataFrame:
    where, params = "", {}
    if user_id is not None:
        where, params = "WHERE user_id = %(u)s AND local_date = %(d)s", {"u": user_id, "d": day}
    with psycopg_connection(engine) as conn:
        cursor = conn.execute(f"SELECT * FROM {table} {where}".encode(), params)
        frame = pd.DataFrame(cursor.fetchall(), columns=[c.name for c in cursor.description or []])
    return frame.sort_values(list(frame.columns)).reset_index(drop=True) if len(frame) else frame


def checksums(engine: Engine) -> dict[str, str]:
    with psycopg_connection(engine) as conn:
        return {
            table: str(
                conn.execute(
                    f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t".encode()
                ).fetchone()[0]
            )
            for table in OUTPUT_TABLES
        }  # type: ignore[index]


@pytest.fixture(scope="module")
def world(make_database: Callable[[], URL]) -> Iterator[tuple[Engine, SyntheticDataset, pd.DataFrame]]:
    url = make_database()
    migrate(url)
    engine = create_warehouse_engine(url)
    dataset = generate(SyntheticConfig(users=4, days=10, start=dt.date(2024, 3, 6), seed=4))
    load_dataset(engine, dataset)
    user_days = dataset.truth[["user_id", "local_date"]]
    run_all(engine, user_days)
    yield engine, dataset, user_days
    engine.dispose()


def test_marts_daily_matches_the_ground_truth(world: tuple[Engine, SyntheticDataset, pd.DataFrame]) -> None:
    engine, dataset, _ = world
    daily = snapshot(engine, "marts.daily")
    truth = dataset.truth.set_index(["user_id", "local_date"])
    for metric, column, tolerance in [
        ("STEPS", "steps", 0.005),
        ("DISTANCE", "distance_m", 0.005),
        ("ACTIVE_ENERGY", "active_energy_kcal", 0.005),
    ]:
        ours = daily[daily["metric"] == metric].set_index(["user_id", "local_date"])["value"]
        relative = (ours.reindex(truth.index).fillna(0) - truth[column]).abs() / truth[column].where(truth[column] > 0)
        assert relative.max() < tolerance, metric
    sleep = daily[daily["metric"] == "SLEEP_ANALYSIS"].set_index(["user_id", "local_date"])["value"]
    assert (sleep.reindex(truth.index).fillna(0) - truth["sleep_minutes"]).abs().max() <= 1.0


def test_hourly_rows_add_up_to_daily_and_dst_days_have_23_hours(
    world: tuple[Engine, SyntheticDataset, pd.DataFrame],
) -> None:
    engine, _, _ = world
    hourly, daily = snapshot(engine, "marts.hourly"), snapshot(engine, "marts.daily")
    cumulative = hourly[hourly["metric"].isin(["STEPS", "DISTANCE", "ACTIVE_ENERGY"])]
    sums = cumulative.groupby(["user_id", "local_date", "metric"])["sum"].sum()
    values = daily.set_index(["user_id", "local_date", "metric"])["value"].reindex(sums.index)
    assert (sums - values).abs().max() < 1e-6
    # 10 March 2024: the US springs forward, 02:00-03:00 does not exist there; its hours must be absent, not empty
    american = [
        u
        for u, z in zip(world[1].users["user_id"], world[1].users["home_timezone"], strict=True)
        if z.startswith("America/") and z != "America/Sao_Paulo"
    ]
    on_day = hourly[hourly["user_id"].isin(american) & (hourly["local_date"] == dt.date(2024, 3, 10))]
    hours = set(pd.to_datetime(on_day["local_hour"]).dt.hour)
    assert on_day.shape[0] > 0 and 2 not in hours and {1, 3} <= hours


def test_rerunning_partitions_leaves_every_table_identical(
    world: tuple[Engine, SyntheticDataset, pd.DataFrame],
) -> None:
    engine, _, user_days = world
    before = checksums(engine)
    run_all(engine, user_days)
    assert checksums(engine) == before
    run_all(engine, user_days, chunk_size=1000)  # all in one chunk: chunking changes nothing
    assert checksums(engine) == before
    run_all(engine, user_days.iloc[[5]])  # one partition alone
    assert checksums(engine) == before


def test_one_user_day_alone_gives_the_rows_of_the_whole_history(
    world: tuple[Engine, SyntheticDataset, pd.DataFrame],
) -> None:
    engine, _, user_days = world
    user, day = "u0003", dt.date(2024, 3, 10)
    full = {t: snapshot(engine, t, user, day) for t in OUTPUT_TABLES if t != "core.sleep_sessions"}
    with psycopg_connection(engine) as conn:
        for table in OUTPUT_TABLES:
            conn.execute(f"DELETE FROM {table} WHERE user_id = %s".encode(), (user,))
    run_all(engine, pd.DataFrame({"user_id": [user], "local_date": [day]}))
    for table, rows in full.items():
        alone = snapshot(engine, table, user, day)
        assert len(alone) == len(rows) > 0 or table == "core.rejections", table
        pd.testing.assert_frame_equal(alone, rows, check_exact=False, rtol=1e-12, atol=1e-9)
    run_all(engine, user_days)  # restore the rest of the user's days for the other tests


def test_a_run_that_dies_midway_changes_nothing_and_a_rerun_completes(
    world: tuple[Engine, SyntheticDataset, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, _, user_days = world
    before = checksums(engine)
    with psycopg_connection(engine) as conn:
        conn.execute("DELETE FROM core.slices WHERE user_id = 'u0001'")  # a different state to be restored
    damaged = checksums(engine)
    calls = {"n": 0}
    real = process.replace_partitions

    def dies_on_the_third_table(*args: object) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("killed")
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(process, "replace_partitions", dies_on_the_third_table)
    with pytest.raises(RuntimeError, match="killed"), arrow_connection(engine.url) as conn:
        deduplicate_partitions(conn, user_days)
    assert checksums(engine) == damaged  # the transaction rolled back: nothing half-written
    monkeypatch.undo()
    run_all(engine, user_days)
    assert checksums(engine) == before


def test_a_failed_chunk_of_an_overlapped_run_leaves_the_chunks_before_it_done_and_itself_untouched(
    world: tuple[Engine, SyntheticDataset, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner writes chunk k while chunk k+1 is computed; a failure while writing the third chunk of 7
    user-days ends the run with the first two chunks committed and the third (and later) as they were."""
    from pipeline.samples import runner

    engine, _, user_days = world
    before = checksums(engine)
    with psycopg_connection(engine) as conn:
        conn.execute("UPDATE core.partition_stats SET raw_rows = -1")  # a state that recomputing restores
    calls = {"n": 0}
    real = runner.write

    def fails_on_the_third_chunk(*args: object) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("the disk is full")
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(runner, "write", fails_on_the_third_chunk)
    with pytest.raises(RuntimeError, match="the disk is full"):
        deduplicate_user_days(engine.url, user_days, chunk_size=7)
    stats = snapshot(engine, "core.partition_stats")
    ordered = user_days.sort_values(["user_id", "local_date"]).reset_index(drop=True)
    recomputed = stats.merge(ordered.iloc[:14], on=["user_id", "local_date"])
    assert len(recomputed) == 14 and (recomputed["raw_rows"] > 0).all()  # chunks 1 and 2 committed
    untouched = stats.merge(ordered.iloc[14:], on=["user_id", "local_date"])
    assert len(untouched) == len(ordered) - 14 and (untouched["raw_rows"] == -1).all()  # the rest as it was
    monkeypatch.undo()
    run_all(engine, user_days)
    assert checksums(engine) == before


def test_partition_stats_conserve_rows(world: tuple[Engine, SyntheticDataset, pd.DataFrame]) -> None:
    engine, _, _ = world
    stats = snapshot(engine, "core.partition_stats")
    assert (stats["raw_rows"] == stats["accepted"] + stats["rejected"] + stats["exact_duplicates"]).all()
    assert stats["rejected"].sum() > 0 and stats["exact_duplicates"].sum() > 0
    with psycopg.connect(libpq_url(engine.url)) as conn:
        raw_total = conn.execute(
            """SELECT count(*) FROM raw.samples s JOIN app.users u USING (user_id)
               WHERE (s.start_utc AT TIME ZONE coalesce(s.timezone, u.home_timezone))::date
                     BETWEEN '2024-03-06' AND '2024-03-15' AND s.user_id <> 'u0004'"""
        ).fetchone()
    # (u0004 travels: its rows' zones come from the history, which this plain SQL does not apply)
    assert stats[stats["user_id"] != "u0004"]["raw_rows"].sum() == raw_total[0]  # type: ignore[index]


def test_the_sql_models_agree_with_the_pure_aggregation(world: tuple[Engine, SyntheticDataset, pd.DataFrame]) -> None:
    """The marts are built by SQL models; the pure path (used by the ground-truth tests) aggregates in pandas.
    Same samples, same numbers."""
    from pipeline.samples.io import load_inputs
    from pipeline.transform.compute import compute, prepare_samples
    from pipeline.transform.validate import validate

    engine, _, user_days = world
    with arrow_connection(engine.url) as conn, transaction(conn):
        inputs = load_inputs(conn, user_days)
    samples = prepare_samples(validate(inputs.raw).accepted, inputs.users, inputs.history, inputs.orders)
    pure = compute(samples, user_days)
    keys = ["user_id", "local_date", "metric"]
    sql_daily = snapshot(engine, "marts.daily").set_index(keys).sort_index()
    pure_daily = pure.daily.set_index(keys).sort_index()
    assert sql_daily.index.equals(pure_daily.index)
    for column in ("value", "sum", "count", "min", "max"):
        assert (sql_daily[column].astype(float) - pure_daily[column].astype(float)).abs().max() < 1e-6, column
    hour_keys = ["user_id", "metric", "hour_start_utc", "local_hour"]
    sql_hourly = snapshot(engine, "marts.hourly").set_index(hour_keys).sort_index()
    pure_hourly = pure.hourly.assign(local_hour=pd.to_datetime(pure.hourly["local_hour"])).set_index(hour_keys)
    assert len(sql_hourly) == len(pure_hourly)
    joined = sql_hourly[["value", "count"]].join(pure_hourly[["value", "count"]].sort_index(), suffixes=("", "_pure"))
    assert (joined["value"] - joined["value_pure"]).abs().max() < 1e-6
    assert (joined["count"] == joined["count_pure"]).all()
