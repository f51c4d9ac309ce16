"""When insights and health scores are computed: the schedule evaluates and scores the day that has just ended
everywhere; ``insights_late_data`` re-evaluates the days whose windows hold a past day whose marts changed (that
day's users only) and re-scores a past day whose cohort marts changed (every user of it); ``insights_catch_up``
evaluates and scores the finished days with marts that were never evaluated or scored (a new deployment, the demo
data of ``healthpipe up``, an import of older history), in one run.

Runs of a range of days carry Dagster's partition-range tags, as a single-run backfill does, so one run covers them.

Neither sensor piles up runs: ``insights_late_data`` leaves out the (user, day)s and score days that a queued or
starting run of ``insights_job`` already covers (read from its range or partition tags, asset selection and users
config). Its cursor keeps, besides the last materializations dealt with, the days it left to each run (runs it found
by id, runs it requested by run key); a tick drops those of a run that succeeded and requests again those of a run
that failed, was canceled or never appeared. ``insights_catch_up`` requests nothing while any run of the job is queued
or under way.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import psycopg
from dagster import (
    AssetRecordsFilter,
    DagsterInstance,
    DagsterRun,
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
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
    RUN_KEY_TAG,
)

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


NOT_YET_STARTED = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING]
FAILED = {DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED, DagsterRunStatus.CANCELING}
INSIGHTS, SCORES = "insights", "scores"
RUN_KEY_REF = "key:"
# (kind, user or "" for the scores of every user) -> days
Wanted = dict[tuple[str, str], set[dt.date]]


@dataclass(frozen=True)
class PendingRun:
    """What a queued or starting run of ``insights_job`` will compute: its days, assets and users (None: all)."""

    run_id: str
    kinds: frozenset[str]
    first: dt.date
    last: dt.date
    users: frozenset[str] | None

    def covers(self, kind: str, user: str, day: dt.date) -> bool:
        user_ok = kind == SCORES or self.users is None or user in self.users
        return kind in self.kinds and self.first <= day <= self.last and user_ok


def configured_users(run_config: Mapping[str, object]) -> list[str] | None:
    """The users a run of ``insights_job`` evaluates insights for (None: every user), as ``users_config`` sets them."""
    node: object = run_config
    for name in ("ops", insights.op.name, "config", "users"):
        node = node.get(name) if isinstance(node, Mapping) else None
    return [str(user) for user in node] if isinstance(node, list) and node else None


def pending_runs(instance: DagsterInstance) -> list[PendingRun]:
    """The runs of ``insights_job`` that have not read the marts yet (a started run may have read them already)."""
    pending = []
    for run in instance.get_runs(RunsFilter(job_name=insights_job.name, statuses=NOT_YET_STARTED)):
        first = run.tags.get(ASSET_PARTITION_RANGE_START_TAG) or run.tags.get(PARTITION_NAME_TAG)
        last = run.tags.get(ASSET_PARTITION_RANGE_END_TAG) or first
        if not first or not last:
            continue
        selection = run.asset_selection
        kinds = frozenset(
            kind
            for kind, key in ((INSIGHTS, insights.key), (SCORES, health_scores.key))
            if selection is None or key in selection
        )
        users = configured_users(run.run_config or {})
        pending.append(
            PendingRun(
                run.run_id,
                kinds,
                dt.date.fromisoformat(first),
                dt.date.fromisoformat(last),
                frozenset(users) if users else None,
            )
        )
    return pending


def split_covered(wanted: Wanted, pending: Sequence[PendingRun]) -> tuple[Wanted, dict[str, Wanted]]:
    """The wanted days no pending run covers, and the covered ones by the id of the (first) run covering them."""
    uncovered: Wanted = {}
    covered: dict[str, Wanted] = {}
    for (kind, user), days in wanted.items():
        for day in days:
            run = next((r for r in pending if r.covers(kind, user, day)), None)
            target = uncovered if run is None else covered.setdefault(run.run_id, {})
            target.setdefault((kind, user), set()).add(day)
    return uncovered, covered


def waiting_to_json(waiting: Mapping[str, Wanted]) -> list[dict[str, object]]:
    return [
        {
            "run": run_id,
            "kind": kind,
            "user": user,
            "ranges": [[a.isoformat(), b.isoformat()] for a, b in _consecutive(sorted(days))],
        }
        for run_id, wanted in sorted(waiting.items())
        for (kind, user), days in sorted(wanted.items())
    ]


def waiting_from_json(entries: Iterable[Mapping[str, object]]) -> dict[str, Wanted]:
    waiting: dict[str, Wanted] = {}
    for entry in entries:
        days = waiting.setdefault(str(entry["run"]), {}).setdefault((str(entry["kind"]), str(entry["user"])), set())
        for first, last in entry["ranges"]:  # type: ignore[attr-defined]
            start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
            days.update(start + dt.timedelta(days=i) for i in range((end - start).days + 1))
    return waiting


def _waited_run(instance: DagsterInstance, ref: str) -> DagsterRun | None:
    """A run the cursor waits for: by id, or (``key:``) by the run key of a request of this sensor."""
    if ref.startswith(RUN_KEY_REF):
        runs = instance.get_runs(RunsFilter(tags={RUN_KEY_TAG: ref.removeprefix(RUN_KEY_REF)}), limit=1)
        return runs[0] if runs else None
    return instance.get_run_by_id(ref)


def settle_waiting(instance: DagsterInstance, waiting: dict[str, Wanted]) -> tuple[dict[str, Wanted], Wanted]:
    """Days left to runs: still waiting (the run has not ended), and due again (the run failed, was canceled or is
    gone); a run that succeeded has computed them."""
    still: dict[str, Wanted] = {}
    due: Wanted = {}
    for run_id, wanted in waiting.items():
        run = _waited_run(instance, run_id)
        if run is not None and run.status == DagsterRunStatus.SUCCESS:
            continue
        if run is None or run.status in FAILED:
            for key, days in wanted.items():
                due.setdefault(key, set()).update(days)
        else:
            still[run_id] = wanted
    return still, due


def merge_wanted(*parts: Wanted) -> Wanted:
    merged: Wanted = {}
    for part in parts:
        for key, days in part.items():
            merged.setdefault(key, set()).update(days)
    return merged


def _insights_wanted(conn: psycopg.Connection[tuple[object, ...]], keys: list[str]) -> tuple[Wanted, int]:
    users = user_ids(conn) if USER_SHARDS else None
    changed = _changed_user_days(keys, users)
    if not changed:
        return {}, 0
    first = min(day for _, day in changed)
    evaluated = {
        row[0]
        for row in conn.execute(
            "SELECT local_date FROM marts.insight_evaluations WHERE local_date >= %s", (first,)
        ).fetchall()
    }
    wanted: Wanted = {}
    for (first_day, last_day), users_of_range in affected_days(changed, evaluated).items():  # type: ignore[arg-type]
        span = {first_day + dt.timedelta(days=i) for i in range((last_day - first_day).days + 1)}
        for user in users_of_range:
            wanted.setdefault((INSIGHTS, user), set()).update(span)
    return wanted, len(changed)


def _scores_wanted(conn: psycopg.Connection[tuple[object, ...]], keys: list[str]) -> Wanted:
    days = {
        dt.date.fromisoformat(user_day_partitions.get_partition_key_from_str(k).keys_by_dimension["day"]) for k in keys
    }
    if not days:
        return {}
    scored = {
        row[0]
        for row in conn.execute(
            "SELECT local_date FROM marts.health_score_days WHERE local_date BETWEEN %s AND %s", (min(days), max(days))
        ).fetchall()
    }
    return {(SCORES, ""): days & scored} if days & scored else {}


def late_requests(wanted: Wanted, insights_tag: str, scores_tag: str, key_seed: str) -> list[tuple[RunRequest, Wanted]]:
    """Insights: a run per range of consecutive days, for the users sharing it; scores: a run per range. Each with
    the days it covers and a run key from ``key_seed`` (the previous cursor): a tick evaluated again asks for the same
    keys, which Dagster launches once, and the next ticks find the run by its key."""
    by_span: dict[tuple[dt.date, dt.date], list[str]] = {}
    requests: list[tuple[RunRequest, Wanted]] = []
    for (kind, user), days in sorted(wanted.items()):
        for first_day, last_day in _consecutive(sorted(days)):
            if kind == INSIGHTS:
                by_span.setdefault((first_day, last_day), []).append(user)
            else:
                tags = {**range_tags(first_day, last_day), SCORES_LATE_DATA_TAG: scores_tag}
                span = _days(first_day, last_day)
                requests.append(
                    (
                        RunRequest(
                            run_key=_run_key(key_seed, SCORES, tags, []),
                            asset_selection=[health_scores.key],
                            tags=tags,
                        ),
                        {(SCORES, ""): span},
                    )
                )
    for (first_day, last_day), users_of_span in sorted(by_span.items()):
        tags = {**range_tags(first_day, last_day), LATE_DATA_TAG: insights_tag}
        span = _days(first_day, last_day)
        request = RunRequest(
            run_key=_run_key(key_seed, INSIGHTS, tags, users_of_span),
            asset_selection=[insights.key],
            run_config=users_config(users_of_span),
            tags=tags,
        )
        requests.insert(0, (request, {(INSIGHTS, user): set(span) for user in users_of_span}))
    return requests


def _days(first_day: dt.date, last_day: dt.date) -> set[dt.date]:
    return {first_day + dt.timedelta(days=i) for i in range((last_day - first_day).days + 1)}


def _run_key(seed: str, kind: str, tags: Mapping[str, str], users: Sequence[str]) -> str:
    text = json.dumps([seed, kind, sorted(tags.items()), sorted(users)])
    return f"late-{kind}-{hashlib.sha256(text.encode()).hexdigest()[:24]}"


@sensor(
    job=insights_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Re-evaluates insights and re-scores health after late data: when the daily marts of a (user, day) "
    "are materialized again after insights of that day or later were evaluated, the evaluated days whose windows "
    f"hold it (that day and the {LOOKBACK_DAYS - 1} after it) are evaluated again for that user only; when the "
    "cohort marts of a scored day are built again, that day is scored again for every user. Days a queued run "
    "already covers are left to it (and requested again if it fails).",
)
def insights_late_data(context: SensorEvaluationContext, warehouse: WarehouseResource) -> SensorResult | SkipReason:
    """Scores follow marts/cohort_daily rather than daily_aggregates: it is built after the daily marts in the same
    runs, and a day's score needs both."""
    daily_after, cohort_after = late_cursors(context.cursor)
    waiting = waiting_from_json(
        json.loads(context.cursor).get("waiting", []) if context.cursor and not context.cursor.isdigit() else []
    )
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
    if not daily and not cohort and not waiting:
        return SkipReason(
            f"no materializations of daily_aggregates after {daily_after} or cohort_daily after {cohort_after}"
        )
    daily_upto = max((r.storage_id for r in daily), default=daily_after)
    cohort_upto = max((r.storage_id for r in cohort), default=cohort_after)
    still_waiting, due = settle_waiting(context.instance, waiting)
    with psycopg_connection(warehouse.engine()) as conn:
        insights_wanted, changed = _insights_wanted(conn, [r.partition_key for r in daily if r.partition_key])
        scores_wanted = _scores_wanted(conn, [r.partition_key for r in cohort if r.partition_key])
    uncovered, covered = split_covered(
        merge_wanted(insights_wanted, scores_wanted, due), pending_runs(context.instance)
    )
    for run_id, wanted in covered.items():
        still_waiting[run_id] = merge_wanted(still_waiting.get(run_id, {}), wanted)
    keyed = late_requests(
        uncovered, f"{daily_after + 1}-{daily_upto}", f"{cohort_after + 1}-{cohort_upto}", context.cursor or ""
    )
    for request, wanted in keyed:
        still_waiting[f"{RUN_KEY_REF}{request.run_key}"] = wanted
    requests = [request for request, _ in keyed]
    cursor = json.dumps({"daily": daily_upto, "cohort": cohort_upto, "waiting": waiting_to_json(still_waiting)})
    if not requests:
        return SensorResult(
            cursor=cursor,
            skip_reason=SkipReason(
                f"{changed} changed user-days, none in evaluated windows or scored days or not already queued"
            ),
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
