"""The pipeline through Dagster: one run over a range of user-day partitions, its asset checks, the sensors that
launch such runs (new batches, recompute requests from the UI), and the run-time check of a run's range."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from dagster import (
    AssetKey,
    AssetSelection,
    DagsterEventType,
    DagsterInstance,
    DagsterInvalidConfigError,
    DagsterRunStatus,
    ExecuteInProcessResult,
    PartitionKeyRange,
    RunRequest,
    SensorResult,
    build_sensor_context,
    define_asset_job,
    validate_run_config,
)
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from pipeline.definitions import ASSET_KEYS, defs
from pipeline.infra.database import create_warehouse_engine, psycopg_connection
from pipeline.samples.partitions import USERS_PARTITION, partition_key, user_day_partitions
from pipeline.samples.requests import REQUEST_JOB
from pipeline.samples.run_plan import PARTITIONS_TAG, plan_runs
from pipeline.samples.sensors import new_raw_batches, recompute_requests
from pipeline.synthetic.generator import SyntheticConfig, generate
from pipeline.synthetic.load import load_dataset
from tests.support.helpers import GLUCOSE_AND_WEIGHT, GLUCOSE_AND_WEIGHT_DAILY, daily_values, land_samples, new_user

ASSET_NAMES = ("deduplicated_samples", "hourly_aggregates", "daily_aggregates")
CHECK_NAMES = {
    "conservation",
    "winning_slices_do_not_overlap",
    "kept_never_above_raw_sum",
    "kept_not_below_largest_source",
    "validation_pass_rate",
    "hourly_rows_within_their_local_day",
    "cumulative_hours_sum_to_kept_slices",
    "hourly_sums_equal_daily",
}


def run_u0001_march_6_to_10(raise_on_error: bool = True) -> ExecuteInProcessResult:
    """The samples assets and their checks as one in-process run over u0001 x 2024-03-06..10 (range tags)."""
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(USERS_PARTITION, ["u0001"])
        job = define_asset_job("samples", selection=AssetSelection.groups("samples")).resolve(
            asset_graph=defs.resolve_asset_graph()
        )
        return job.execute_in_process(
            instance=instance,
            resources={"warehouse": defs.resources["warehouse"]},  # type: ignore[index]
            tags={
                ASSET_PARTITION_RANGE_START_TAG: str(partition_key("u0001", "2024-03-06")),
                ASSET_PARTITION_RANGE_END_TAG: str(partition_key("u0001", "2024-03-10")),
            },
            raise_on_error=raise_on_error,
        )


def insert_overlapping_slices(engine: Engine, user: str, day: str) -> None:
    """Two winning STEPS slices of ``user`` on ``day`` that overlap (10:10-10:20 inside 10:00-10:30 UTC)."""
    with psycopg_connection(engine) as conn:
        for start, end in (("10:00", "10:30"), ("10:10", "10:20")):
            conn.execute(
                """INSERT INTO core.slices VALUES (%s, %s, 'STEPS', NULL, %s, %s, %s, %s, 5, 'x', 'watch',
                   gen_random_uuid(), true)""",
                (user, day, f"{day} {start}+00", f"{day} {end}+00", f"{day} 10:00", f"{day} 10:00+00"),
            )


def test_one_run_materializes_a_range_of_partitions_and_its_checks_pass(warehouse_url: URL) -> None:
    engine = create_warehouse_engine(warehouse_url)
    dataset = generate(SyntheticConfig(users=1, days=5, start=dt.date(2024, 3, 6), seed=8))
    load_dataset(engine, dataset)
    with psycopg_connection(engine) as conn:  # a broken user-day and an overlap outside this run: not its concern
        conn.execute(
            "INSERT INTO core.partition_stats (user_id, local_date, raw_rows, rejected, accepted, exact_duplicates) "
            "VALUES ('u0009', '2024-03-07', 10, 1, 1, 0)"
        )
    insert_overlapping_slices(engine, "u0009", "2024-03-07")
    result = run_u0001_march_6_to_10()
    assert result.success
    materializations = result.asset_materializations_for_node("deduplicated_samples")
    assert len(materializations) == 5  # five partitions, one run
    metadata = materializations[0].metadata
    assert metadata["user_days"].value == 5 and metadata["rows_in"].value > 1000
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    checks = {name: e.passed for name, e in evaluations.items()}
    assert checks["conservation"] and checks["winning_slices_do_not_overlap"]
    assert checks["kept_never_above_raw_sum"] and checks["hourly_sums_equal_daily"]
    assert checks["hourly_rows_within_their_local_day"] and checks["cumulative_hours_sum_to_kept_slices"]
    with psycopg_connection(engine) as conn:  # the checks looked at the run's five user-days only
        run_rows = conn.execute("SELECT sum(raw_rows) FROM core.partition_stats WHERE user_id = 'u0001'").fetchone()
    conserved = {k: v.value for k, v in evaluations["conservation"].metadata.items()}
    assert conserved["raw_rows"] == run_rows[0]  # type: ignore[index]
    assert conserved["raw_rows"] == conserved["accepted"] + conserved["rejected"] + conserved["exact_duplicates"]
    assert conserved["accepted"] > 1000 and conserved["rejected"] > 0
    with psycopg_connection(engine) as conn:
        days = conn.execute("SELECT count(DISTINCT local_date) FROM marts.daily").fetchone()
    assert days == (5,)
    engine.dispose()


def test_an_overlap_next_to_the_run_fails_its_blocking_check_and_stops_the_aggregates(warehouse_url: URL) -> None:
    """The overlap check compares the run's slices with those of the day either side: two winning slices that overlap
    on the day after the run's last day fail it, and the hourly and daily assets (downstream) do not run."""
    engine = create_warehouse_engine(warehouse_url)
    load_dataset(engine, generate(SyntheticConfig(users=1, days=5, start=dt.date(2024, 3, 6), seed=8)))
    insert_overlapping_slices(engine, "u0001", "2024-03-11")
    result = run_u0001_march_6_to_10(raise_on_error=False)
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not evaluations["winning_slices_do_not_overlap"].passed
    assert evaluations["winning_slices_do_not_overlap"].metadata["overlapping_slices"].value == 1
    assert evaluations["conservation"].passed
    assert not result.asset_materializations_for_node("hourly_aggregates")  # blocked downstream
    engine.dispose()


def run_hourly_checks_and_daily() -> ExecuteInProcessResult:
    """The checks of hourly_aggregates and the daily asset over u0001 x 2024-03-06..10, as in a range run after
    hourly_aggregates."""
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(USERS_PARTITION, ["u0001"])
        selection = AssetSelection.checks_for_assets(AssetKey("hourly_aggregates")) | AssetSelection.assets(
            "daily_aggregates"
        )
        return (
            define_asset_job("daily", selection=selection)
            .resolve(asset_graph=defs.resolve_asset_graph())
            .execute_in_process(
                instance=instance,
                resources={"warehouse": defs.resources["warehouse"]},  # type: ignore[index]
                tags={
                    ASSET_PARTITION_RANGE_START_TAG: str(partition_key("u0001", "2024-03-06")),
                    ASSET_PARTITION_RANGE_END_TAG: str(partition_key("u0001", "2024-03-10")),
                },
                raise_on_error=False,
            )
        )


def test_the_hourly_checks_catch_a_row_outside_its_day_and_a_sum_above_the_kept_slices_and_stop_daily(
    warehouse_url: URL,
) -> None:
    engine = create_warehouse_engine(warehouse_url)
    load_dataset(engine, generate(SyntheticConfig(users=1, days=5, start=dt.date(2024, 3, 6), seed=8)))
    clean = run_u0001_march_6_to_10()
    evaluations = {e.check_name: e for e in clean.get_asset_check_evaluations()}
    for name, measure in (
        ("hourly_rows_within_their_local_day", "rows_outside_their_day"),
        ("cumulative_hours_sum_to_kept_slices", "user_day_metrics_above"),
        ("cumulative_hours_sum_to_kept_slices", "user_day_metrics_below"),
    ):
        assert evaluations[name].passed and evaluations[name].metadata[measure].value == 0
    assert len(run_hourly_checks_and_daily().asset_materializations_for_node("daily_aggregates")) == 5
    with psycopg_connection(engine) as conn:
        # a weight reading of 03:00 on the 8th filed under the 7th; 50 steps more in one hour of the 8th than its
        # kept slices hold; one hour of steps of the 9th lost
        conn.execute(
            """INSERT INTO marts.hourly VALUES ('u0001', '2024-03-07', 'WEIGHT', '2024-03-08 03:00',
               '2024-03-08 03:00+00', 70, 70, 1, 70, 70, 70, '2024-03-08 03:00+00')"""
        )
        conn.execute(
            """UPDATE marts.hourly SET sum = sum + 50, value = value + 50 WHERE (user_id, metric, hour_start_utc) =
               (SELECT user_id, metric, min(hour_start_utc) FROM marts.hourly
                WHERE user_id = 'u0001' AND local_date = '2024-03-08' AND metric = 'STEPS' GROUP BY 1, 2)"""
        )
        lost = conn.execute(
            """DELETE FROM marts.hourly WHERE (user_id, metric, hour_start_utc) =
               (SELECT user_id, metric, max(hour_start_utc) FROM marts.hourly
                WHERE user_id = 'u0001' AND local_date = '2024-03-09' AND metric = 'STEPS' GROUP BY 1, 2)"""
        )
        assert lost.rowcount == 1
    result = run_hourly_checks_and_daily()
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    outside = evaluations["hourly_rows_within_their_local_day"]
    assert not outside.passed and outside.metadata["rows_outside_their_day"].value == 1
    sums = evaluations["cumulative_hours_sum_to_kept_slices"]
    assert not sums.passed
    assert (sums.metadata["user_day_metrics_above"].value, sums.metadata["user_day_metrics_below"].value) == (1, 1)
    assert not result.asset_materializations_for_node("daily_aggregates")  # blocked
    engine.dispose()


def expand(request: RunRequest, instance: DagsterInstance) -> set[tuple[str, str]]:
    """The (user, day) partitions a range-tagged run request covers, as Dagster expands them."""
    keys = user_day_partitions.get_partition_keys_in_range(
        PartitionKeyRange(request.tags[ASSET_PARTITION_RANGE_START_TAG], request.tags[ASSET_PARTITION_RANGE_END_TAG]),
        dynamic_partitions_store=instance,
    )
    assert len(keys) == int(request.tags[PARTITIONS_TAG])
    return {(k.keys_by_dimension["user"], k.keys_by_dimension["day"]) for k in keys}


def apply_partition_requests(result: SensorResult, instance: DagsterInstance) -> None:
    """What the sensor daemon does before it launches the runs."""
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))


def test_the_sensor_requests_range_runs_over_exactly_the_days_a_new_batch_touches(warehouse_url: URL) -> None:
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
        instance.add_dynamic_partitions(USERS_PARTITION, ["u0002"])  # already known: u0001 is appended after it
        context = build_sensor_context(
            instance=instance, definitions=defs, resources={"warehouse": defs.resources["warehouse"]}
        )  # type: ignore[index]
        result = new_raw_batches(context)
        assert isinstance(result, SensorResult)
        assert result.cursor is not None and '"batch": 1' in result.cursor
        assert [list(r.partition_keys) for r in result.dynamic_partitions_requests or []] == [["u0001"]]
        apply_partition_requests(result, instance)
        assert instance.get_dynamic_partitions(USERS_PARTITION) == ["u0002", "u0001"]
        (request,) = result.run_requests or []
        requested = expand(request, instance)
    # one run, not a backfill: the three assets and their checks over one range, tagged with the batches
    assert request.asset_graph_subset is None
    assert set(request.asset_selection or []) == set(ASSET_KEYS) >= {AssetKey(n) for n in ASSET_NAMES}  # + marts
    samples_checks = {k.name for k in request.asset_check_keys or [] if k.asset_key.to_user_string() in ASSET_NAMES}
    assert samples_checks == CHECK_NAMES
    assert request.tags["healthpipe/batches"] == "1-1"
    assert str(request.tags[ASSET_PARTITION_RANGE_START_TAG]).endswith("|u0002")  # the dimension's order
    assert str(request.tags[ASSET_PARTITION_RANGE_END_TAG]).endswith("|u0001")
    # expected: each landed sample's local start day (its zone, else the user's home zone) and the days either side
    from pipeline.timezones import to_local

    landed = split_for_landing(first_arrival.drop(columns="arrival_day")).accepted
    homes = landed["user_id"].map(dataset.users.set_index("user_id")["home_timezone"])
    local_days = to_local(landed["start_utc"], landed["timezone"].fillna(homes)).dt.date
    expected = {
        (user, str(day + dt.timedelta(days=shift)))
        for user, day in zip(landed["user_id"], local_days, strict=True)
        for shift in (-1, 0, 1)
    }
    assert requested >= expected and len(requested) <= 2 * len(expected)  # widened to one users x days rectangle
    users_in, days_in = {u for u, _ in requested}, {d for _, d in requested}
    assert users_in == {"u0001", "u0002"} and len(requested) == len(users_in) * len(days_in)
    assert days_in == {str(d) for d in pd.date_range(min(d for _, d in expected), max(d for _, d in expected)).date}
    engine.dispose()


def test_a_recompute_request_from_the_ui_becomes_range_runs_that_materialize_it(warehouse_url: URL) -> None:
    engine = create_warehouse_engine(warehouse_url)
    dataset = generate(SyntheticConfig(users=3, days=4, start=dt.date(2024, 3, 6), seed=12))
    load_dataset(engine, dataset)
    resources = {"warehouse": defs.resources["warehouse"]}  # type: ignore[index]
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(USERS_PARTITION, ["u0003", "u0001", "u0002"])
        job = defs.get_job_def(REQUEST_JOB)
        # what the Launchpad runs: a bad request fails in the UI, nothing is recorded
        bad = job.execute_in_process(
            instance=instance,
            resources=resources,
            run_config={"ops": {"recompute_request": {"config": {"users": ["nobody"]}}}},
            raise_on_error=False,
        )
        assert not bad.success
        good = job.execute_in_process(
            instance=instance,
            resources=resources,
            run_config={
                "ops": {
                    "recompute_request": {
                        "config": {"users": ["u0001", "u0002"], "first_day": "2024-03-07", "last_day": "2024-03-08"}
                    }
                }
            },
        )
        assert good.success
        context = build_sensor_context(instance=instance, definitions=defs, resources=resources)
        result = recompute_requests(context)
        assert isinstance(result, SensorResult) and not result.dynamic_partitions_requests
        (request,) = result.run_requests or []  # u0001, u0002 are contiguous in the dimension's order
        assert request.tags["healthpipe/request"] == good.run_id
        assert expand(request, instance) == {(u, d) for u in ("u0001", "u0002") for d in ("2024-03-07", "2024-03-08")}
        # the cursor moved past both request runs: the next evaluation requests nothing
        again = recompute_requests(
            build_sensor_context(instance=instance, definitions=defs, resources=resources, cursor=result.cursor)
        )
        assert isinstance(again, SensorResult) and not again.run_requests
        # the run as the daemon would launch it (same tags, assets and checks)
        run = (
            define_asset_job("samples", selection=AssetSelection.groups("samples"))
            .resolve(asset_graph=defs.resolve_asset_graph())
            .execute_in_process(instance=instance, resources=resources, tags=request.tags)
        )
        assert run.success
        assert len(run.asset_materializations_for_node("deduplicated_samples")) == 4
    with psycopg_connection(engine) as conn:
        rows = conn.execute("SELECT user_id, local_date::text FROM core.partition_stats ORDER BY 1, 2").fetchall()
    assert rows == [(u, d) for u in ("u0001", "u0002") for d in ("2024-03-07", "2024-03-08")]
    engine.dispose()


def request_run(
    instance: DagsterInstance, config: dict[str, object], raise_on_error: bool = True
) -> ExecuteInProcessResult:
    """The job request_recompute launched from the Launchpad with ``config`` as the op's config."""
    return defs.get_job_def(REQUEST_JOB).execute_in_process(
        instance=instance,
        resources={"warehouse": defs.resources["warehouse"]},  # type: ignore[index]
        run_config={"ops": {"recompute_request": {"config": config}}},
        raise_on_error=raise_on_error,
    )


def test_the_launchpad_s_empty_config_is_refused_before_a_run_exists() -> None:
    """`{}` (what the Launchpad opens with) used to mean every user and every day; `users` must now be given. The
    Launchpad validates the config as it is typed and keeps its Launch button disabled while it is invalid."""
    job = defs.get_job_def(REQUEST_JOB)
    resources = {"warehouse": defs.resources["warehouse"]}  # type: ignore[index]
    with pytest.raises(DagsterInvalidConfigError, match="Missing required config entry") as refused:
        validate_run_config(job, {})
    assert "'users'" in str(refused.value)  # the example config it prints names the field
    with DagsterInstance.ephemeral() as instance:
        with pytest.raises(DagsterInvalidConfigError):
            job.execute_in_process(instance=instance, run_config={}, resources=resources)
        assert instance.get_runs() == []
    validate_run_config(job, {"ops": {"recompute_request": {"config": {"users": "all"}}}})
    validate_run_config(job, {"ops": {"recompute_request": {"config": {"users": ["u0001", "u0002"]}}}})


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        (
            {"users": []},
            "users: [] names no one; list user ids (users: [u0001, u0002]) or write users: all for every user "
            "with raw samples",
        ),
        (
            {"users": ""},  # what the Launchpad's "Scaffold missing config" writes
            "say whose days to recompute: users: all for every user with raw samples, or a list of user ids "
            "(users: [u0001, u0002])",
        ),
        ({"users": "everyone"}, "users is `all` or a list of user ids, not 'everyone'"),
        ({"users": ["nobody"]}, "no raw samples for user(s) nobody"),
        ({"users": "all", "first_day": "2024-3-7"}, "first_day is YYYY-MM-DD, not '2024-3-7'"),
        (
            {"users": "all", "first_day": "2024-03-09", "last_day": "2024-03-07"},
            "the first day 2024-03-09 is after the last day 2024-03-07",
        ),
    ],
)
def test_a_refused_request_fails_its_run_with_the_reason_as_the_failure_message(
    warehouse_url: URL, config: dict[str, object], reason: str
) -> None:
    engine = create_warehouse_engine(warehouse_url)
    load_dataset(engine, generate(SyntheticConfig(users=2, days=2, start=dt.date(2024, 3, 6), seed=5)))
    engine.dispose()
    with DagsterInstance.ephemeral() as instance:
        result = request_run(instance, config, raise_on_error=False)
    assert not result.success
    (step_failure,) = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    assert step_failure.step_failure_data.user_failure_data is not None
    assert step_failure.step_failure_data.user_failure_data.description == f"request refused: {reason}"
    (run_failure,) = [e for e in result.all_events if e.event_type == DagsterEventType.RUN_FAILURE]
    error = run_failure.job_failure_data.error  # what the UI shows in red under the run's failure event
    assert error is not None
    assert error.message.strip() == f"dagster._core.definitions.events.Failure: request refused: {reason}"
    assert error.cause is None  # not a chained exception inside a stack trace


def test_users_all_requests_every_user_with_raw_samples(warehouse_url: URL) -> None:
    engine = create_warehouse_engine(warehouse_url)
    load_dataset(engine, generate(SyntheticConfig(users=3, days=2, start=dt.date(2024, 3, 6), seed=5)))
    engine.dispose()
    resources = {"warehouse": defs.resources["warehouse"]}  # type: ignore[index]
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(USERS_PARTITION, ["u0001", "u0002", "u0003"])
        run = request_run(instance, {"users": "all", "first_day": "2024-03-07", "last_day": "2024-03-07"})
        result = recompute_requests(build_sensor_context(instance=instance, definitions=defs, resources=resources))
        assert isinstance(result, SensorResult)
        (request,) = result.run_requests or []
        assert request.tags["healthpipe/request"] == run.run_id
        assert expand(request, instance) == {(u, "2024-03-07") for u in ("u0001", "u0002", "u0003")}


def test_recompute_requests_are_taken_in_order_and_the_sensor_waits_for_one_still_running(warehouse_url: URL) -> None:
    engine = create_warehouse_engine(warehouse_url)
    load_dataset(engine, generate(SyntheticConfig(users=3, days=1, start=dt.date(2024, 3, 6), seed=3)))
    engine.dispose()
    resources = {"warehouse": defs.resources["warehouse"]}  # type: ignore[index]
    job = defs.get_job_def(REQUEST_JOB)

    def request(user: str, status: DagsterRunStatus) -> str:
        config = {"users": [user], "first_day": "2024-03-06", "last_day": "2024-03-06"}
        run_config = {"ops": {"recompute_request": {"config": config}}}
        return instance.create_run_for_job(job, run_config=run_config, status=status).run_id

    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(USERS_PARTITION, ["u0001", "u0002", "u0003"])
        first = request("u0001", DagsterRunStatus.SUCCESS)
        request("u0002", DagsterRunStatus.FAILURE)  # a failed request launches nothing
        many = [request("u0003", DagsterRunStatus.SUCCESS) for _ in range(105)]  # more than one page of records
        running = request("u0002", DagsterRunStatus.STARTED)
        later = request("u0001", DagsterRunStatus.SUCCESS)  # must not overtake the one still running

        result = recompute_requests(build_sensor_context(instance=instance, definitions=defs, resources=resources))
        assert isinstance(result, SensorResult)
        assert [r.tags["healthpipe/request"] for r in result.run_requests or []] == [first, *many]
        assert [expand(r, instance) for r in (result.run_requests or [])[:2]] == [
            {("u0001", "2024-03-06")},
            {("u0003", "2024-03-06")},
        ]

        running_run = instance.get_run_by_id(running)
        assert running_run is not None
        instance.report_run_failed(running_run)
        result = recompute_requests(
            build_sensor_context(instance=instance, definitions=defs, resources=resources, cursor=result.cursor)
        )
        assert isinstance(result, SensorResult)
        assert [r.tags["healthpipe/request"] for r in result.run_requests or []] == [later]


def test_a_run_whose_range_no_longer_matches_its_plan_fails(warehouse_url: URL) -> None:
    """Ranges follow the order users were added in; a run planned for 2 users that would expand to 3 refuses."""
    engine = create_warehouse_engine(warehouse_url)
    load_dataset(engine, generate(SyntheticConfig(users=3, days=1, start=dt.date(2024, 3, 6), seed=2)))
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(USERS_PARTITION, ["u0001", "u0003", "u0002"])
        (rectangle,) = plan_runs(
            {("u0001", dt.date(2024, 3, 6)), ("u0002", dt.date(2024, 3, 6))}, ["u0001", "u0002", "u0003"]
        )
        result = (
            define_asset_job("samples", selection=AssetSelection.groups("samples"))
            .resolve(asset_graph=defs.resolve_asset_graph())
            .execute_in_process(
                instance=instance,
                resources={"warehouse": defs.resources["warehouse"]},  # type: ignore[index]
                tags=rectangle.tags(),
                raise_on_error=False,
            )
        )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "expands to 3 partitions, not the 2 it was planned with" in str(failure.event_specific_data)
    with psycopg_connection(engine) as conn:
        assert conn.execute("SELECT count(*) FROM core.partition_stats").fetchone() == (0,)
    engine.dispose()


def test_a_user_with_only_glucose_and_weight_is_computed_through_the_sensor(warehouse_url: URL) -> None:
    """No steps, no sleep: the run the new-batch sensor launches computes the readings, and its checks pass."""
    engine = create_warehouse_engine(warehouse_url)
    user = new_user(engine, "UTC", prefix="glucose")
    land_samples(engine, user, GLUCOSE_AND_WEIGHT)
    resources = {"warehouse": defs.resources["warehouse"]}  # type: ignore[index]
    with DagsterInstance.ephemeral() as instance:
        result = new_raw_batches(build_sensor_context(instance=instance, definitions=defs, resources=resources))
        assert isinstance(result, SensorResult)
        apply_partition_requests(result, instance)
        (request,) = result.run_requests or []
        assert expand(request, instance) == {(user, d) for d in ("2024-04-30", "2024-05-01", "2024-05-02")}
        run = (
            define_asset_job("samples", selection=AssetSelection.groups("samples"))
            .resolve(asset_graph=defs.resolve_asset_graph())
            .execute_in_process(instance=instance, resources=resources, tags=request.tags)
        )
    assert run.success
    assert all(e.passed for e in run.get_asset_check_evaluations())
    assert len(run.asset_materializations_for_node("daily_aggregates")) == 3
    assert daily_values(engine, user, "2024-05-01") == GLUCOSE_AND_WEIGHT_DAILY
    with psycopg_connection(engine) as conn:
        kept = conn.execute("SELECT count(*) FILTER (WHERE kept) FROM core.readings WHERE user_id = %s", (user,))
        assert kept.fetchone() == (4,)
    engine.dispose()
