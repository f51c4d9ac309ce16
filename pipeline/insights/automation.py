"""When insights and health scores are computed: the schedule evaluates and scores the day that has just ended
everywhere; ``insights_late_data`` re-evaluates the days whose windows hold a past day whose marts changed (that
day's users only) and re-scores a past day whose cohort marts changed (every user of it); ``insights_catch_up``
evaluates and scores the finished days with marts that were never evaluated or scored (a new deployment, the demo
data of ``healthpipe up``, an import of older history), in one run.

Runs of a range of days carry Dagster's partition-range tags, as a single-run backfill does, so one run covers them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence

import psycopg
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
from pipeline.scores.assets import COHORT_DAILY, health_scores

DAY_TAG = "healthpipe/insights-day"
LATE_DATA_TAG = "healthpipe/insights-late-data"
SCORES_LATE_DATA_TAG = "healthpipe/scores-late-data"
CATCH_UP_TAG = "healthpipe/insights-catch-up"
MATERIALIZATIONS_PER_TICK = 10_000
CATCH_UP_MARGIN = dt.timedelta(hours=1)

insights_job = define_asset_job(
    "insights_job",
    selection=[insights, health_scores],
    description="Evaluates the insight rules (for every user or the users in config) and scores the health of every "
    "user for a range of days, in one run.",
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
    "12:00 UTC): evaluates that day's insights and scores its health for every user.",
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


def late_cursors(cursor: str | None) -> tuple[int, int]:
    """The storage ids of the last materializations of daily_aggregates and of marts/cohort_daily dealt with (a
    plain number, the cursor before scores existed, stands for both)."""
    if not cursor:
        return 0, 0
    if cursor.isdigit():
        return int(cursor), int(cursor)
    parsed = json.loads(cursor)
    return int(parsed["daily"]), int(parsed["cohort"])


def scored_day_ranges(changed_days: Iterable[dt.date], scored: set[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """The scored days among ``changed_days``, as runs of consecutive days: a day never scored is left to the
    schedule or the catch-up."""
    return _consecutive(sorted(set(changed_days) & scored))


def _insight_requests(
    conn: psycopg.Connection[tuple[object, ...]], keys: list[str], tag: str
) -> tuple[list[RunRequest], int]:
    users = user_ids(conn) if USER_SHARDS else None
    changed = _changed_user_days(keys, users)
    if not changed:
        return [], 0
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
            asset_selection=[insights.key],
            run_config=users_config(users_of_range),
            tags={**range_tags(first_day, last_day), LATE_DATA_TAG: tag},
        )
        for (first_day, last_day), users_of_range in sorted(ranges.items())
    ]
    return requests, len(changed)


def _score_requests(conn: psycopg.Connection[tuple[object, ...]], keys: list[str], tag: str) -> list[RunRequest]:
    days = {
        dt.date.fromisoformat(user_day_partitions.get_partition_key_from_str(k).keys_by_dimension["day"]) for k in keys
    }
    if not days:
        return []
    scored = {
        row[0]
        for row in conn.execute(
            "SELECT local_date FROM marts.health_score_days WHERE local_date BETWEEN %s AND %s", (min(days), max(days))
        ).fetchall()
    }
    return [
        RunRequest(
            asset_selection=[health_scores.key],
            tags={**range_tags(first_day, last_day), SCORES_LATE_DATA_TAG: tag},
        )
        for first_day, last_day in scored_day_ranges(days, scored)  # type: ignore[arg-type]
    ]


@sensor(
    job=insights_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Re-evaluates insights and re-scores health after late data: when the daily marts of a (user, day) "
    "are materialized again after insights of that day or later were evaluated, the evaluated days whose windows "
    f"hold it (that day and the {LOOKBACK_DAYS - 1} after it) are evaluated again for that user only; when the "
    "cohort marts of a scored day are built again, that day is scored again for every user.",
)
def insights_late_data(context: SensorEvaluationContext, warehouse: WarehouseResource) -> SensorResult | SkipReason:
    """Scores follow marts/cohort_daily rather than daily_aggregates: it is built after the daily marts in the same
    runs, and a day's score needs both."""
    daily_after, cohort_after = late_cursors(context.cursor)
    daily = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=daily_aggregates.key, after_storage_id=daily_after),
        limit=MATERIALIZATIONS_PER_TICK,
        ascending=True,
    ).records
    cohort = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=COHORT_DAILY, after_storage_id=cohort_after),
        limit=MATERIALIZATIONS_PER_TICK,
        ascending=True,
    ).records
    if not daily and not cohort:
        return SkipReason(
            f"no materializations of daily_aggregates after {daily_after} or cohort_daily after {cohort_after}"
        )
    daily_upto = max((r.storage_id for r in daily), default=daily_after)
    cohort_upto = max((r.storage_id for r in cohort), default=cohort_after)
    cursor = json.dumps({"daily": daily_upto, "cohort": cohort_upto})
    with psycopg_connection(warehouse.engine()) as conn:
        requests, changed = _insight_requests(
            conn, [r.partition_key for r in daily if r.partition_key], f"{daily_after + 1}-{daily_upto}"
        )
        requests += _score_requests(
            conn, [r.partition_key for r in cohort if r.partition_key], f"{cohort_after + 1}-{cohort_upto}"
        )
    if not requests:
        return SensorResult(
            cursor=cursor,
            skip_reason=SkipReason(f"{changed} changed user-days, none in evaluated windows or scored days"),
        )
    return SensorResult(run_requests=requests, cursor=cursor)


@sensor(
    job=insights_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Evaluates and scores, in one run, the finished days with daily marts that were never evaluated or "
    "scored (both assets: re-evaluating a day already evaluated writes nothing) (a new "
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
            "WHERE NOT EXISTS (SELECT 1 FROM marts.insight_evaluations e WHERE e.local_date = d.day) "
            "OR NOT EXISTS (SELECT 1 FROM marts.health_score_days s WHERE s.local_date = d.day)",
            (start, last),
        ).fetchone()
    if row is None or row[0] is None:
        return SkipReason(f"every day with marts up to {last} is evaluated and scored")
    first_day, last_day = row[0], row[1]
    return RunRequest(
        run_key=f"catch-up:{first_day}:{last_day}",
        tags={**range_tags(first_day, last_day), CATCH_UP_TAG: f"{first_day}..{last_day}"},  # type: ignore[arg-type]
    )
