"""The pipeline through Dagster: one run over a range of user-day partitions, its asset checks, and the sensor."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pytest
from dagster import (
    AssetSelection,
    DagsterInstance,
    build_sensor_context,
    define_asset_job,
)
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from sqlalchemy.engine import URL

from pipeline.definitions import defs
from pipeline.infra.database import create_warehouse_engine
from pipeline.infra.migrations import migrate
from pipeline.ingest.store import psycopg_connection
from pipeline.samples.partitions import USERS_PARTITION, partition_key
from pipeline.samples.sensors import new_raw_batches
from pipeline.synthetic.generator import SyntheticConfig, generate
from pipeline.synthetic.load import load_dataset


@pytest.fixture
def warehouse_url(make_database: Callable[[], URL], monkeypatch: pytest.MonkeyPatch) -> Iterator[URL]:
    url = make_database()
    migrate(url)
    monkeypatch.setenv("HEALTHPIPE_DATABASE_URL", url.render_as_string(hide_password=False))
    yield url


def test_one_run_materializes_a_range_of_partitions_and_its_checks_pass(warehouse_url: URL) -> None:
    engine = create_warehouse_engine(warehouse_url)
    dataset = generate(SyntheticConfig(users=1, days=5, start=dt.date(2024, 3, 6), seed=8))
    load_dataset(engine, dataset)
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(USERS_PARTITION, ["u0001"])
        job = define_asset_job("samples", selection=AssetSelection.groups("samples")).resolve(
            asset_graph=defs.resolve_asset_graph()
        )
        result = job.execute_in_process(
            instance=instance,
            resources={"warehouse": defs.resources["warehouse"]},  # type: ignore[index]
            tags={
                ASSET_PARTITION_RANGE_START_TAG: str(partition_key("u0001", "2024-03-06")),
                ASSET_PARTITION_RANGE_END_TAG: str(partition_key("u0001", "2024-03-10")),
            },
        )
    assert result.success
    materializations = result.asset_materializations_for_node("deduplicated_samples")
    assert len(materializations) == 5  # five partitions, one run
    metadata = materializations[0].metadata
    assert metadata["user_days"].value == 5 and metadata["rows_in"].value > 1000
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["conservation"] and checks["winning_slices_do_not_overlap"]
    assert checks["kept_never_above_raw_sum"] and checks["hourly_sums_equal_daily"]
    with psycopg_connection(engine) as conn:
        days = conn.execute("SELECT count(DISTINCT local_date) FROM marts.daily").fetchone()
    assert days == (5,)
    engine.dispose()


def test_the_sensor_requests_exactly_the_days_a_new_batch_touches(warehouse_url: URL) -> None:
    engine = create_warehouse_engine(warehouse_url)
    dataset = generate(SyntheticConfig(users=2, days=3, start=dt.date(2024, 3, 6), seed=9))
    first_arrival = dataset.samples[dataset.samples["arrival_day"] == 1]
    from pipeline.ingest.landing import split_for_landing
    from pipeline.ingest.store import create_batch, finish_batch, land_chunk
    from pipeline.synthetic.load import load_accounts

    load_accounts(engine, dataset)
    with psycopg_connection(engine) as conn:
        batch = create_batch(conn, None, "synthetic", "one day")
        finish_batch(conn, batch, land_chunk(conn, batch, split_for_landing(first_arrival.drop(columns="arrival_day"))))
    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(
            instance=instance, definitions=defs, resources={"warehouse": defs.resources["warehouse"]}
        )  # type: ignore[index]
        result = new_raw_batches(context)
    assert result.cursor is not None and '"batch": 1' in result.cursor
    requested = {key.partition_key for key in result.run_requests[0].asset_graph_subset.iterate_asset_partitions()}
    users = {str(k).split("|")[1] for k in requested}
    assert users == {"u0001", "u0002"}
    assert result.dynamic_partitions_requests[0].partition_keys == ["u0001", "u0002"]
    # expected: each landed sample's local start day (its zone, else the user's home zone) and the days either side
    from pipeline.timezones import to_local

    landed = split_for_landing(first_arrival.drop(columns="arrival_day")).accepted
    homes = landed["user_id"].map(dataset.users.set_index("user_id")["home_timezone"])
    local_days = to_local(landed["start_utc"], landed["timezone"].fillna(homes)).dt.date
    expected = {
        f"{day + dt.timedelta(days=shift)}|{user}"
        for user, day in zip(landed["user_id"], local_days, strict=True)
        for shift in (-1, 0, 1)
    }
    assert requested == expected or (
        requested >= expected and len(requested) <= 2 * len(expected)  # widened to one rectangle of users x days
    )
    users_in, days_in = {k.split("|")[1] for k in requested}, {k.split("|")[0] for k in requested}
    assert len(requested) == len(users_in) * len(days_in)  # a rectangle: one backfill run can take it whole
    engine.dispose()


def test_requests_widen_to_a_rectangle_only_when_it_is_cheap() -> None:
    from pipeline.samples.sensors import as_rectangle

    ragged = {("a", "2024-03-01"), ("a", "2024-03-02"), ("b", "2024-03-02"), ("b", "2024-03-03")}
    assert as_rectangle(ragged) == {(u, d) for u in "ab" for d in ("2024-03-01", "2024-03-02", "2024-03-03")}
    far_apart = {("a", "2024-03-01"), ("b", "2024-09-01")}
    assert as_rectangle(far_apart) == far_apart  # 2 users x 185 days would be 185x the work
