"""The insights in Dagster: the schedule asks for the day that has just ended everywhere; a run over a range of days
is one run with the insights' metadata; late marts of a past day re-evaluate exactly the evaluated days whose
windows hold it, for that user; the catch-up sensor evaluates the finished days never evaluated."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from dagster import (
    AssetMaterialization,
    DagsterEvent,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    RunRequest,
    SensorResult,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
)
from dagster._core.remote_origin import InProcessCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG, RUN_KEY_TAG
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from sqlalchemy.engine import URL

from pipeline.definitions import defs
from pipeline.insights.assets import insights as insights_asset
from pipeline.insights.automation import (
    DAY_TAG,
    affected_days,
    daily_insights,
    insights_catch_up,
    insights_job,
    insights_late_data,
    range_tags,
    users_config,
)
from pipeline.insights.partitions import last_finished_day
from pipeline.insights.thresholds import LOOKBACK_DAYS
from pipeline.samples.assets import daily_aggregates
from pipeline.samples.partitions import DAY_START, partition_key
from tests.insights.series import day
from tests.insights.test_episodes_db import add_daily, connect, insights

RESOURCES: dict[str, Any] = {"warehouse": defs.resources["warehouse"]}  # type: ignore[index]


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (dt.datetime(2024, 3, 15, 12, 30, tzinfo=dt.UTC), "2024-03-14"),
        (dt.datetime(2024, 3, 1, 12, 30, tzinfo=dt.UTC), "2024-02-29"),
    ],
)
def test_the_schedule_requests_the_day_that_has_ended_in_every_zone(at: dt.datetime, expected: str) -> None:
    request = daily_insights(build_schedule_context(scheduled_execution_time=at))
    assert isinstance(request, RunRequest)
    assert (request.partition_key, request.run_key, request.tags[DAY_TAG]) == (expected, expected, expected)
    assert daily_insights.cron_schedule == "30 12 * * *" and daily_insights.execution_timezone == "UTC"


def test_a_day_has_ended_everywhere_at_noon_utc_the_next_day() -> None:
    assert last_finished_day(dt.datetime(2024, 3, 15, 11, 59, tzinfo=dt.UTC)) == dt.date(2024, 3, 13)
    assert last_finished_day(dt.datetime(2024, 3, 15, 12, 0, tzinfo=dt.UTC)) == dt.date(2024, 3, 14)
    # 11:30 at UTC-12 on the 14th is 23:30 UTC: the day still runs there
    assert last_finished_day(dt.datetime(2024, 3, 14, 23, 30, tzinfo=dt.UTC)) == dt.date(2024, 3, 13)


def test_changed_days_reach_the_evaluated_days_whose_windows_hold_them() -> None:
    evaluated = {day(i) for i in range(60)}
    ranges = affected_days([("ben", day(5)), ("ben", day(7)), ("anna", day(5)), ("carl", day(58))], evaluated)
    assert ranges == {
        (day(5), day(7 + LOOKBACK_DAYS - 1)): ["ben"],
        (day(5), day(5 + LOOKBACK_DAYS - 1)): ["anna"],
        (day(58), day(59)): ["carl"],  # days not evaluated yet are the schedule's
    }
    assert affected_days([("ben", day(61))], evaluated) == {}
    with_a_gap = evaluated - {day(10), day(11)}
    assert affected_days([("ben", day(5))], with_a_gap) == {
        (day(5), day(9)): ["ben"],
        (day(12), day(5 + LOOKBACK_DAYS - 1)): ["ben"],
    }


def run_insights(
    instance: DagsterInstance, first: int, last: int, users: list[str] | None = None, run_key: str | None = None
) -> Any:
    """A run of the insights over days ``first``..``last``; ``run_key`` as the daemon tags a sensor's request."""
    job = defs.resolve_job_def(insights_job.name)
    config = {"ops": {"insights": {"config": {"users": users}}}} if users else None
    return job.execute_in_process(
        instance=instance,
        resources=RESOURCES,
        asset_selection=[insights_asset.key],
        tags={**range_tags(day(first), day(last)), **({RUN_KEY_TAG: run_key} if run_key else {})},
        run_config=config,
    )


@pytest.fixture
def users(warehouse_url: URL) -> URL:
    from pipeline import accounts

    with connect(warehouse_url) as conn:
        accounts.create_user(conn, "anna", "UTC")
        accounts.create_user(conn, "ben", "UTC")
    add_daily(warehouse_url, "anna", "SLEEP_ANALYSIS", [400.0] * 60)
    add_daily(warehouse_url, "ben", "SLEEP_ANALYSIS", [480.0] * 60)
    return warehouse_url


def test_a_range_of_days_is_one_run_with_insights_by_rule_and_severity(users: URL) -> None:
    with DagsterInstance.ephemeral() as instance:
        result = run_insights(instance, 0, 59)
        assert result.success
        events = result.get_asset_materialization_events()
        assert len(instance.get_runs()) == 1
    assert sorted(e.partition for e in events) == [str(day(i)) for i in range(60)]  # one run, every day's partition
    metadata = {k: v.value for k, v in events[0].materialization.metadata.items()}
    assert metadata["days"] == 60 and metadata["users"] == 2
    assert metadata["findings_by_rule"] == {"sleep_deficit": 57}  # anna, from her 4th night on
    assert metadata["active_by_severity"] == {"medium": 1}
    assert "| sleep_deficit | medium | 1 | 0 |" in str(metadata["insights_by_rule_and_severity"])
    assert [(r["user_id"], r["first_evaluated_day"], r["last_evaluated_day"]) for r in insights(users)] == [
        ("anna", day(3), day(59))
    ]


def report_daily_aggregates(instance: DagsterInstance, user: str, offset: int) -> None:
    instance.report_runless_asset_event(
        AssetMaterialization(daily_aggregates.key, partition=str(partition_key(user, day(offset))))
    )


def test_late_marts_re_evaluate_exactly_the_affected_days_of_their_user(users: URL) -> None:
    with DagsterInstance.ephemeral() as instance:
        sensor_context = build_sensor_context(instance=instance, definitions=defs, resources=RESOURCES)
        assert isinstance(insights_late_data(sensor_context), SkipReason)  # nothing materialized yet
        run_insights(instance, 0, 49)
        report_daily_aggregates(instance, "anna", 55)  # a day not evaluated yet: the schedule's, not late
        result = insights_late_data(sensor_context)
        assert isinstance(result, SensorResult) and not result.run_requests
        # ben's day 20 recomputed late (three short nights arrive): days 20..54 hold it, 20..49 are evaluated
        add_daily(users, "ben", "SLEEP_ANALYSIS", [200.0] * 3, start=20)
        report_daily_aggregates(instance, "ben", 20)
        report_daily_aggregates(instance, "ben", 21)
        report_daily_aggregates(instance, "ben", 22)
        sensor_context = build_sensor_context(
            instance=instance, definitions=defs, resources=RESOURCES, cursor=result.cursor
        )
        result = insights_late_data(sensor_context)
        assert isinstance(result, SensorResult)
        [request] = result.run_requests or []
        assert request.tags[ASSET_PARTITION_RANGE_START_TAG] == str(day(20))
        assert request.tags[ASSET_PARTITION_RANGE_END_TAG] == str(day(49))
        assert request.run_config == {"ops": {"insights": {"config": {"users": ["ben"]}}}}
        with connect(users) as conn:
            before_days = conn.execute(
                "SELECT * FROM marts.insight_days WHERE user_id = 'anna' ORDER BY local_date"
            ).fetchall()
        anna_before = [r for r in insights(users) if r["user_id"] == "anna"]
        assert run_insights(instance, 20, 49, ["ben"], request.run_key).success
        # the same cursor again: nothing new (the run it waited for succeeded)
        again = insights_late_data(
            build_sensor_context(instance=instance, definitions=defs, resources=RESOURCES, cursor=result.cursor)
        )
        assert isinstance(again, SensorResult) and not again.run_requests
        assert isinstance(insights_late_data(sensor_context_at(instance, again.cursor)), SkipReason)
    ben = [r for r in insights(users) if r["user_id"] == "ben"]
    # 7-night means: day 20 440 min; 21 400 (2 x 200 + 5 x 480); 22..26 360; 27 400; 28 440 again
    assert [(r["first_evaluated_day"], r["last_evaluated_day"], r["resolved_on"]) for r in ben] == [
        (day(21), day(27), day(28))
    ]
    assert [r for r in insights(users) if r["user_id"] == "anna"] == anna_before
    with connect(users) as conn:
        assert (
            conn.execute("SELECT * FROM marts.insight_days WHERE user_id = 'anna' ORDER BY local_date").fetchall()
            == before_days
        )


def queue(instance: DagsterInstance, request: RunRequest) -> str:
    """A run of the request as the daemon leaves it while the run queue is full."""
    run = instance.create_run_for_job(
        defs.resolve_job_def(insights_job.name),
        run_config=request.run_config,
        tags={**request.tags, RUN_KEY_TAG: str(request.run_key)},
        asset_selection=set(request.asset_selection or []),
        remote_job_origin=RemoteJobOrigin(
            RemoteRepositoryOrigin(
                InProcessCodeLocationOrigin(LoadableTargetOrigin(module_name="pipeline.definitions")), "__repository__"
            ),
            insights_job.name,
        ),
    )
    report(instance, run.run_id, DagsterEventType.RUN_ENQUEUED)
    assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.QUEUED  # type: ignore[union-attr]
    return run.run_id


def report(instance: DagsterInstance, run_id: str, event_type: DagsterEventType) -> None:
    run = instance.get_run_by_id(run_id)
    assert run is not None
    instance.report_dagster_event(DagsterEvent(event_type.value, job_name=run.job_name), run_id=run_id)


def sensor_context_at(instance: DagsterInstance, cursor: str | None) -> Any:
    return build_sensor_context(instance=instance, definitions=defs, resources=RESOURCES, cursor=cursor)


def tick(instance: DagsterInstance, cursor: str | None) -> SensorResult:
    """A tick of the late-data sensor; a skip keeps the cursor, as the daemon does."""
    result = insights_late_data(
        build_sensor_context(instance=instance, definitions=defs, resources=RESOURCES, cursor=cursor)
    )
    return SensorResult(cursor=cursor) if isinstance(result, SkipReason) else result


def spans(result: SensorResult) -> list[tuple[str, str, object]]:
    return [
        (r.tags[ASSET_PARTITION_RANGE_START_TAG], r.tags[ASSET_PARTITION_RANGE_END_TAG], r.run_config)
        for r in result.run_requests or []
    ]


def test_a_change_a_queued_run_covers_is_left_to_it_and_requested_again_if_it_fails(users: URL) -> None:
    ben, anna = users_config(["ben"]), users_config(["anna"])
    with DagsterInstance.ephemeral() as instance:
        run_insights(instance, 0, 49)
        report_daily_aggregates(instance, "ben", 45)
        first = tick(instance, None)
        assert spans(first) == [(str(day(45)), str(day(49)), ben)]  # days 45..49 hold day 45; 49 is the last evaluated
        queued = queue(instance, (first.run_requests or [])[0])
        # the same day changes twice more while that run waits in the queue; anna's day 45 changes too
        report_daily_aggregates(instance, "ben", 45)
        report_daily_aggregates(instance, "ben", 46)
        report_daily_aggregates(instance, "anna", 45)
        second = tick(instance, first.cursor)
        assert spans(second) == [(str(day(45)), str(day(49)), anna)]  # ben's days are the queued run's
        anna_run = queue(instance, (second.run_requests or [])[0])
        third = tick(instance, second.cursor)
        assert not third.run_requests  # nothing new, both runs still queued
        report(instance, queued, DagsterEventType.RUN_FAILURE)
        report(instance, anna_run, DagsterEventType.RUN_SUCCESS)
        fourth = tick(instance, third.cursor)
        assert spans(fourth) == [(str(day(45)), str(day(49)), ben)]  # the failed run's days, once
        retry = queue(instance, (fourth.run_requests or [])[0])
        waiting = tick(instance, fourth.cursor)
        assert not waiting.run_requests
        report(instance, retry, DagsterEventType.RUN_FAILURE)  # a run the sensor asked for itself fails too
        again = tick(instance, waiting.cursor)
        assert spans(again) == [(str(day(45)), str(day(49)), ben)]
        report(instance, queue(instance, (again.run_requests or [])[0]), DagsterEventType.RUN_SUCCESS)
        fifth = tick(instance, again.cursor)
        assert not fifth.run_requests  # done: nothing is requested again
        report_daily_aggregates(instance, "ben", 47)  # a new change after the run: a new run
        assert spans(tick(instance, fifth.cursor)) == [(str(day(47)), str(day(49)), ben)]


def test_catch_up_evaluates_the_finished_days_never_evaluated_in_one_run(warehouse_url: URL) -> None:
    from pipeline import accounts

    today = dt.datetime.now(dt.UTC).date()
    with connect(warehouse_url) as conn:
        accounts.create_user(conn, "anna", "UTC")
    add_daily(warehouse_url, "anna", "STEPS", [5_000.0] * 12, start=(today - day(0)).days - 14)  # 14..3 days ago
    newest_finished = last_finished_day(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))  # the schedule's own day out
    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(instance=instance, definitions=defs, resources=RESOURCES)
        request = insights_catch_up(context)
        assert isinstance(request, RunRequest)
        assert request.tags[ASSET_PARTITION_RANGE_START_TAG] == str(today - dt.timedelta(days=14))
        assert request.tags[ASSET_PARTITION_RANGE_END_TAG] == str(min(newest_finished, today - dt.timedelta(days=3)))
        job = defs.resolve_job_def(insights_job.name)
        assert job.execute_in_process(instance=instance, resources=RESOURCES, tags=request.tags).success
        assert isinstance(insights_catch_up(context), SkipReason)
    with connect(warehouse_url) as conn:
        evaluated = conn.execute("SELECT count(*) FROM marts.insight_evaluations").fetchone()
    assert evaluated == (12,)


def test_a_backfill_of_any_number_of_days_is_one_run() -> None:
    from dagster import AssetKey, BackfillPolicy

    node = defs.resolve_asset_graph().get(AssetKey("insights"))
    assert node.backfill_policy == BackfillPolicy.single_run()
    assert node.partitions_def is not None and node.partitions_def.get_partition_keys()[0] == DAY_START
