"""The scores in Dagster: the insights' schedule also scores the day just ended; late cohort marts of a scored day
re-score exactly that day (every user of it); the catch-up scores the days never scored; a year of days is one run."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    BackfillPolicy,
    DagsterInstance,
    RunRequest,
    SensorResult,
    build_schedule_context,
    build_sensor_context,
)
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG, RUN_KEY_TAG
from sqlalchemy.engine import URL

from pipeline.definitions import defs
from pipeline.insights.automation import daily_insights, insights_job, insights_late_data, range_tags
from pipeline.samples.partitions import partition_key
from pipeline.scores.assets import COHORT_DAILY, health_scores
from tests.insights.series import day
from tests.scores.test_scores_db import add, build_cohort_daily, connect, scores

RESOURCES: dict[str, Any] = {"warehouse": defs.resources["warehouse"]}  # type: ignore[index]


@pytest.fixture
def three_days(warehouse_url: URL) -> URL:
    from pipeline import accounts

    with connect(warehouse_url) as conn:
        for user in "abc":
            accounts.create_user(conn, user, "UTC")
    for offset in range(3):
        add(warehouse_url, "STEPS", {"a": 4_000, "b": 8_000, "c": 12_000}, offset)
        add(warehouse_url, "ACTIVE_ENERGY", {"a": 300, "b": 400, "c": 500}, offset)
        add(warehouse_url, "RESTING_HEART_RATE", {"a": 50, "b": 60, "c": 70}, offset)
    build_cohort_daily(warehouse_url)
    return warehouse_url


def run_job(instance: DagsterInstance, request: RunRequest) -> Any:
    job = defs.resolve_job_def(insights_job.name)
    return job.execute_in_process(
        instance=instance,
        resources=RESOURCES,
        partition_key=request.partition_key,
        tags={**request.tags, **({RUN_KEY_TAG: request.run_key} if request.run_key else {})},  # as the daemon tags it
        asset_selection=request.asset_selection,
        run_config=request.run_config or None,
    )


def computed_at(url: URL) -> dict[tuple[str, object], object]:
    with connect(url) as conn:
        rows = conn.execute("SELECT user_id, local_date, computed_at FROM marts.health_scores").fetchall()
    return {(str(r[0]), r[1]): r[2] for r in rows}


def test_the_schedule_scores_the_day_that_has_just_ended(three_days: URL) -> None:
    at = day(2).isoformat() + "T12:30:00+00:00"
    request = daily_insights(build_schedule_context(scheduled_execution_time=dt.datetime.fromisoformat(at)))
    assert isinstance(request, RunRequest) and request.partition_key == str(day(1))
    assert health_scores.key in defs.resolve_job_def(insights_job.name).asset_layer.selected_asset_keys
    with DagsterInstance.ephemeral() as instance:
        result = run_job(instance, request)
        assert result.success
        events = [e for e in result.get_asset_materialization_events() if e.asset_key == health_scores.key]
    assert [e.partition for e in events] == [str(day(1))]
    metadata = {k: v.value for k, v in events[0].materialization.metadata.items()}
    assert metadata["scores"] == 3 and metadata["score_distribution"]["count"] == 3  # type: ignore[index]
    assert set(scores(three_days, 1)) == {"a", "b", "c"} and scores(three_days, 0) == scores(three_days, 2) == {}


def report_cohort(instance: DagsterInstance, user: str, offset: int) -> None:
    instance.report_runless_asset_event(
        AssetMaterialization(COHORT_DAILY, partition=str(partition_key(user, day(offset))))
    )


def test_late_cohort_marts_re_score_exactly_the_scored_days_they_change(three_days: URL) -> None:
    job = defs.resolve_job_def(insights_job.name)
    with DagsterInstance.ephemeral() as instance:
        assert job.execute_in_process(
            instance=instance, resources=RESOURCES, tags=range_tags(day(0), day(2)), asset_selection=[health_scores.key]
        ).success
        context = build_sensor_context(instance=instance, definitions=defs, resources=RESOURCES)
        before = computed_at(three_days)
        first = (scores(three_days, 0), scores(three_days, 1), scores(three_days, 2))
        # c's steps of day 1 arrive late (and lower); day 1's cohort marts are rebuilt for c; day 9 was never scored
        add(three_days, "STEPS", {"c": 6_000}, offset=1)
        build_cohort_daily(three_days)
        report_cohort(instance, "c", 1)
        report_cohort(instance, "a", 9)
        result = insights_late_data(context)
        assert isinstance(result, SensorResult)
        [request] = result.run_requests or []
        assert request.asset_selection == [health_scores.key]
        assert (request.tags[ASSET_PARTITION_RANGE_START_TAG], request.tags[ASSET_PARTITION_RANGE_END_TAG]) == (
            str(day(1)),
            str(day(1)),
        )
        assert run_job(instance, request).success
        again = insights_late_data(
            build_sensor_context(instance=instance, definitions=defs, resources=RESOURCES, cursor=result.cursor)
        )
        assert not isinstance(again, SensorResult) or not again.run_requests
    after = computed_at(three_days)
    # days 0 and 2 untouched (not even rewritten); day 1 re-scored for every user, not only c
    assert all(after[k] == before[k] for k in after if k[1] != day(1))
    assert all(after[k] > before[k] for k in after if k[1] == day(1))
    assert (scores(three_days, 0), scores(three_days, 2)) == (first[0], first[2])
    # day 1 steps 4000, 8000, 6000: b is now the best stepper
    assert scores(three_days, 1)["b"]["activity"] > first[1]["b"]["activity"]
    # a rerun of the same request changes no value
    values = scores(three_days, 1)
    with DagsterInstance.ephemeral() as instance:
        assert run_job(instance, request).success
    assert scores(three_days, 1) == values


def test_a_backfill_of_any_number_of_days_is_one_run() -> None:
    node = defs.resolve_asset_graph().get(AssetKey("health_scores"))
    assert node.backfill_policy == BackfillPolicy.single_run()
    assert {key.to_user_string() for key in node.parent_keys} == {"daily_aggregates", "marts/cohort_daily"}
