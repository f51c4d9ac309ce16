"""When insights are computed: the schedule evaluates the day that has just ended everywhere; ``insights_late_data``
re-evaluates the days whose windows hold a past day whose marts changed (that day's users only);
``insights_catch_up`` evaluates the finished days with marts that were never evaluated (a new deployment, the demo
data of ``healthpipe up``, an import of older history), in one run.

Runs of a range of days carry Dagster's partition-range tags, as a single-run backfill does, so one run covers them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from dagster import (
    AssetRecordsFilter,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    schedule,
    sensor,
)
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from pipeline.accounts import user_ids
from pipeline.infra.database import psycopg_connection
from pipeline.insights.assets import insights
from pipeline.insights.partitions import last_finished_day
from pipeline.insights.thresholds import LOOKBACK_DAYS
from pipeline.resources import WarehouseResource
from pipeline.samples.assets import daily_aggregates
from pipeline.samples.partitions import DAY_START, USER_SHARDS, shard_of, user_day_partitions

DAY_TAG = "healthpipe/insights-day"
LATE_DATA_TAG = "healthpipe/insights-late-data"
CATCH_UP_TAG = "healthpipe/insights-catch-up"
MATERIALIZATIONS_PER_TICK = 10_000
CATCH_UP_MARGIN = dt.timedelta(hours=1)

insights_job = define_asset_job(
    "insights_job",
    selection=[insights],
    description="Evaluates the insight rules for a range of days (one run), for every user or the users in config.",
)


def range_tags(first_day: dt.date, last_day: dt.date) -> dict[str, str]:
    return {ASSET_PARTITION_RANGE_START_TAG: first_day.isoformat(), ASSET_PARTITION_RANGE_END_TAG: last_day.isoformat()}


def users_config(users: Sequence[str]) -> dict[str, object]:
    return {"ops": {insights.op.name: {"config": {"users": list(users)}}}}


@schedule(
    cron_schedule="30 12 * * *",
    execution_timezone="UTC",
    job=insights_job,
    default_status=DefaultScheduleStatus.RUNNING,
    description="Daily at 12:30 UTC, once the previous local day has ended in every time zone (UTC-12 ends it at "
    "12:00 UTC): evaluates that day's insights for every user.",
)
def daily_insights(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
    scheduled = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
    day = last_finished_day(scheduled)
    if day < dt.date.fromisoformat(DAY_START):
        return SkipReason(f"{day} is before the first partition day {DAY_START}")
    return RunRequest(run_key=day.isoformat(), partition_key=day.isoformat(), tags={DAY_TAG: day.isoformat()})


def affected_days(
    changed: Iterable[tuple[str, dt.date]], evaluated: set[dt.date]
) -> dict[tuple[dt.date, dt.date], list[str]]:
    """For user-days whose marts changed: the evaluated insight days whose windows hold them (the day itself and the
    ``LOOKBACK_DAYS - 1`` after it), as (first, last) ranges -> users. A user's days run from the earliest changed
    day, split where days were never evaluated; users with the same range share it."""
    first_changed: dict[str, dt.date] = {}
    for user, day in changed:
        first_changed[user] = min(day, first_changed.get(user, day))
    latest_changed: dict[str, dt.date] = {}
    for user, day in changed:
        latest_changed[user] = max(day, latest_changed.get(user, day))
    ranges: dict[tuple[dt.date, dt.date], list[str]] = {}
    for user in sorted(first_changed):
        reach = latest_changed[user] + dt.timedelta(days=LOOKBACK_DAYS - 1)
        for span in _consecutive(sorted(d for d in evaluated if first_changed[user] <= d <= reach)):
            ranges.setdefault(span, []).append(user)
    return ranges


def _consecutive(days: list[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Sorted days as (first, last) runs of consecutive days: a re-evaluation never covers a day never evaluated."""
    spans: list[tuple[dt.date, dt.date]] = []
    for day in days:
        if spans and day - spans[-1][1] == dt.timedelta(days=1):
            spans[-1] = (spans[-1][0], day)
        else:
            spans.append((day, day))
    return spans


def _changed_user_days(keys: Iterable[str], conn_users: list[str] | None) -> set[tuple[str, dt.date]]:
    pairs: set[tuple[str, dt.date]] = set()
    members: dict[str, list[str]] = {}
    for user in conn_users or []:
        members.setdefault(shard_of(user), []).append(user)
    for key in keys:
        parts = user_day_partitions.get_partition_key_from_str(key).keys_by_dimension
        day = dt.date.fromisoformat(parts["day"])
        for user in members.get(parts["user"], []) if USER_SHARDS else [parts["user"]]:
            pairs.add((user, day))
    return pairs


@sensor(
    job=insights_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Re-evaluates insights after late data: when the daily marts of a (user, day) are materialized "
    "again after insights of that day or later were evaluated, the evaluated days whose windows hold it (that day "
    f"and the {LOOKBACK_DAYS - 1} after it) are evaluated again for that user only.",
)
def insights_late_data(context: SensorEvaluationContext, warehouse: WarehouseResource) -> SensorResult | SkipReason:
    """The cursor is the storage id of the last materialization of daily_aggregates dealt with."""
    after = int(context.cursor or 0)
    result = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=daily_aggregates.key, after_storage_id=after),
        limit=MATERIALIZATIONS_PER_TICK,
        ascending=True,
    )
    if not result.records:
        return SkipReason(f"no materializations of daily_aggregates after {after}")
    upto = max(record.storage_id for record in result.records)
    keys = [r.partition_key for r in result.records if r.partition_key]
    with psycopg_connection(warehouse.engine()) as conn:
        users = user_ids(conn) if USER_SHARDS else None
        changed = _changed_user_days(keys, users)
        if not changed:
            return SensorResult(cursor=str(upto), skip_reason=SkipReason("no user-day partitions materialized"))
        first = min(day for _, day in changed)
        evaluated = {
            row[0]
            for row in conn.execute(
                "SELECT local_date FROM marts.insight_evaluations WHERE local_date >= %s", (first,)
            ).fetchall()
        }
    ranges = affected_days(changed, evaluated)  # type: ignore[arg-type]
    requests = [
        RunRequest(
            run_config=users_config(users_of_range),
            tags={**range_tags(first_day, last_day), LATE_DATA_TAG: f"{after + 1}-{upto}"},
        )
        for (first_day, last_day), users_of_range in sorted(ranges.items())
    ]
    if not requests:
        return SensorResult(
            cursor=str(upto), skip_reason=SkipReason(f"{len(changed)} changed user-days, none in evaluated windows")
        )
    return SensorResult(run_requests=requests, cursor=str(upto))


@sensor(
    job=insights_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Evaluates, in one run, the finished days with daily marts that were never evaluated (a new "
    "deployment's history, demo data, an import of older data, a missed schedule tick); the day the schedule is "
    "about to evaluate is left to it.",
)
def insights_catch_up(context: SensorEvaluationContext, warehouse: WarehouseResource) -> RunRequest | SkipReason:
    running = context.instance.get_run_records(
        RunsFilter(
            job_name=insights_job.name,
            statuses=[
                DagsterRunStatus.QUEUED,
                DagsterRunStatus.NOT_STARTED,
                DagsterRunStatus.STARTING,
                DagsterRunStatus.STARTED,
            ],
        ),
        limit=1,
    )
    if running:
        return SkipReason("an insights run is under way")
    # Up to the last day whose scheduled run is an hour past: the day the schedule is about to evaluate is its own
    # (no race with it); a day whose tick was missed (the daemon was down, or started after it) is caught up.
    last = last_finished_day(dt.datetime.now(dt.UTC) - CATCH_UP_MARGIN)
    start = dt.date.fromisoformat(DAY_START)
    with psycopg_connection(warehouse.engine()) as conn:
        row = conn.execute(
            "SELECT min(day), max(day) FROM (SELECT DISTINCT local_date AS day FROM marts.daily "
            "WHERE local_date BETWEEN %s AND %s) d "
            "WHERE NOT EXISTS (SELECT 1 FROM marts.insight_evaluations e WHERE e.local_date = d.day)",
            (start, last),
        ).fetchone()
    if row is None or row[0] is None:
        return SkipReason(f"every day with marts up to {last} is evaluated")
    first_day, last_day = row[0], row[1]
    return RunRequest(
        run_key=f"catch-up:{first_day}:{last_day}",
        tags={**range_tags(first_day, last_day), CATCH_UP_TAG: f"{first_day}..{last_day}"},  # type: ignore[arg-type]
    )
