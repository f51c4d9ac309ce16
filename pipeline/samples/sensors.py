"""Sensors that launch runs over user x day rectangles: for newly landed raw batches, for recompute requests, and
for users whose source priority changed. The batch sensor also records each finished ingest batch as an observation
of the external asset ``raw_samples``, and ``raw_samples_freshness`` has the freshness check of those observations
evaluated when its answer can change.

Each run materializes every user x day asset downstream of ``raw_samples``, with its checks (``selection.py``), and
carries partition-range tags (``pipeline/samples/run_plan.py``), exactly what Dagster itself builds
for a single-run backfill policy over one range, so one run covers a whole users x days rectangle. (A
``RunRequest.for_asset_graph_subset`` would go through the asset-backfill daemon, which splits a user x day subset
into one run per user.)
"""

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import cast

from dagster import (
    AddDynamicPartitionsRequest,
    AssetCheckKey,
    AssetObservation,
    AssetRecordsFilter,
    AssetSelection,
    DagsterInstance,
    DagsterInvariantViolationError,
    DagsterRunStatus,
    DefaultSensorStatus,
    MetadataValue,
    RunRecord,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from dagster._core.definitions.asset_checks.asset_check_factories.utils import (
    FRESH_UNTIL_METADATA_KEY,
    LAST_UPDATED_TIMESTAMP_METADATA_KEY,
)
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from pipeline.accounts import user_ids
from pipeline.infra.database import Connection, psycopg_connection
from pipeline.infra.executor import max_user_days_per_run
from pipeline.infra.settings import Settings
from pipeline.ingest.store import sweep_abandoned
from pipeline.resources import WarehouseResource
from pipeline.samples.assets import raw_samples
from pipeline.samples.checks import RAW_FRESHNESS_CHECKS
from pipeline.samples.io import sql
from pipeline.samples.partitions import USER_SHARDS, USERS_PARTITION, partition_days, user_day_partitions
from pipeline.samples.requests import REQUEST_JOB, REQUEST_OP, RecomputeRequest, RequestError, user_days
from pipeline.samples.run_plan import Pair, dimension_pairs, plan_runs, shard_weights
from pipeline.samples.selection import DOWNSTREAM_OF_RAW_SAMPLES, RunTargets, range_run_targets

BATCHES_TAG = "healthpipe/batches"
REQUEST_TAG = "healthpipe/request"
PRIORITY_TAG = "healthpipe/priority-changes"
# A change is taken once it is this old: its row id was drawn when it was inserted, and a transaction that drew a
# lower id may still be committing (setting a priority takes milliseconds).
PRIORITY_SETTLE = dt.timedelta(seconds=10)


def targets(context: SensorEvaluationContext) -> RunTargets:
    """The assets and checks of the range runs, from the asset graph of the code location the sensor runs in."""
    if context.repository_def is None:
        raise DagsterInvariantViolationError(
            "the range-run sensors resolve their assets against their code location: build the sensor context with "
            "definitions (build_sensor_context(definitions=...))"
        )
    return range_run_targets(context.repository_def.asset_graph)


class RunPlanner:
    """Plans range runs against the user dimension as it will be when they start: the users already there, in their
    order, then the users this evaluation adds (appended in the order of its add request, which the daemon applies
    before it launches the runs). Each run materializes ``targets``."""

    def __init__(self, instance: DagsterInstance, conn: Connection, targets: RunTargets) -> None:
        self.targets = targets
        if USER_SHARDS:
            self.order = list(user_day_partitions.get_partitions_def_for_dimension("user").get_partition_keys())
            self.weights: dict[str, int] | None = shard_weights(user_ids(conn))
        else:
            self.order = list(instance.get_dynamic_partitions(USERS_PARTITION))
            self.weights = None
        self._known = set(self.order)
        self.added: list[str] = []

    def run_requests(self, user_days: Iterable[Pair], tags: dict[str, str]) -> list[RunRequest]:
        pairs = set(user_days)
        if not USER_SHARDS:
            for user in sorted({u for u, _ in pairs} - self._known):
                self.order.append(user)
                self.added.append(user)
                self._known.add(user)
        return [
            RunRequest(
                asset_selection=list(self.targets.asset_keys),
                asset_check_keys=list(self.targets.check_keys),
                tags={**tags, **rect.tags()},
            )
            for rect in plan_runs(
                dimension_pairs(pairs),
                self.order,
                max_user_days=max_user_days_per_run(Settings(), len(pairs)),
                weights=self.weights,
            )
        ]

    def partition_requests(self) -> Sequence[AddDynamicPartitionsRequest]:
        if not self.added:
            return []
        return [AddDynamicPartitionsRequest(partitions_def_name=USERS_PARTITION, partition_keys=list(self.added))]


def _cursor(text: str | None) -> tuple[int, set[tuple[str, str]], float | None]:
    """Last batch taken, user-days held back until their day ends, when rows last landed (epoch seconds)."""
    state = json.loads(text) if text else {}
    pending = {(str(u), str(d)) for u, d in state.get("pending", [])}
    return int(state.get("batch", 0)), pending, state.get("landed")


def batch_observations(
    conn: Connection, after: int, upto: int, landed: float | None
) -> tuple[list[AssetObservation], float | None]:
    """One observation of ``raw_samples`` per batch that finished in (after, upto], and when rows last landed as of
    the last of them. Last landed: the finish time of the latest batch so far that landed any row (a batch of
    duplicates only changes nothing); ``landed`` is that time before these batches (None: from the batches' table)."""
    if landed is None:
        row = conn.execute(sql("last_landed_batch").encode(), {"after": after}).fetchone()
        landed = cast(dt.datetime, row[0]).timestamp() if row else None
    observations = []
    for batch_id, source, status, read, landed_rows, rejected, duplicates, skipped, finished_at in conn.execute(
        sql("finished_batches").encode(), {"after": after, "upto": upto}
    ).fetchall():
        if landed_rows and isinstance(finished_at, dt.datetime):
            landed = max(landed or 0.0, finished_at.timestamp())
        metadata: dict[str, object] = {
            "batch_id": batch_id,
            "source": source,
            "status": status,
            "read": read,
            "landed": landed_rows,
            "rejected": rejected,
            "duplicates": duplicates,
            "skipped": skipped,
        }
        if landed is not None:  # read by the freshness check of raw_samples
            metadata["last_landed_at"] = MetadataValue.timestamp(landed)
            metadata[LAST_UPDATED_TIMESTAMP_METADATA_KEY] = MetadataValue.timestamp(landed)
        observations.append(
            AssetObservation(
                asset_key=raw_samples.key,
                description=f"batch {batch_id} ({source}, {status}): {landed_rows:,} landed, {rejected:,} rejected, "
                f"{duplicates:,} duplicates",
                metadata=metadata,  # type: ignore[arg-type]
            )
        )
    return observations, landed


@sensor(
    asset_selection=DOWNSTREAM_OF_RAW_SAMPLES,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Turns finished ingest batches into runs over the (user, day) partitions they touch, one run per "
    "users x days rectangle of up to 1,500 user-days. Days still open in the user's zone are held back until they "
    "end, then requested. Records each finished batch as an observation of raw_samples.",
)
def new_raw_batches(context: SensorEvaluationContext, warehouse: WarehouseResource) -> SensorResult | SkipReason:
    after, pending, landed = _cursor(context.cursor)
    with psycopg_connection(warehouse.engine()) as conn:
        for batch_id in sweep_abandoned(conn):  # an import that died no longer holds back the batches after it
            context.log.warning(f"ingest batch {batch_id} was left running by an import that is gone: abandoned")
        row = conn.execute(sql("last_settled_batch").encode(), {"after": after}).fetchone()
        upto = int(row[0]) if row else after  # type: ignore[call-overload]
        affected = conn.execute(sql("affected_user_days").encode(), {"after": after, "upto": upto}).fetchall()
        today = dt.date.today()
        ready: set[tuple[str, str]] = set()
        for user, day, still_open in affected:
            key = (str(user), str(day))
            (pending if still_open else ready).add(key)
        for user, day in list(pending):  # released once their day has ended (checked with a day's margin in UTC)
            if dt.date.fromisoformat(day) < today - dt.timedelta(days=1):
                pending.discard((user, day))
                ready.add((user, day))
        earliest, latest = partition_days()
        ready = {(u, d) for u, d in ready if str(earliest) <= d <= str(latest)}
        observations, landed = batch_observations(conn, after, upto, landed) if upto > after else ([], landed)
        new_cursor = json.dumps({"batch": upto, "pending": sorted(pending), "landed": landed})
        if not ready:
            return SensorResult(
                cursor=new_cursor,
                skip_reason=SkipReason(f"no finished user-days after batch {after}"),
                asset_events=observations,
            )
        planner = RunPlanner(context.instance, conn, targets(context))
        requests = planner.run_requests(
            {(u, dt.date.fromisoformat(d)) for u, d in ready}, {BATCHES_TAG: f"{after + 1}-{upto}"}
        )
    return SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=planner.partition_requests(),
        cursor=new_cursor,
        asset_events=observations,
    )


def _op_config(run_config: Mapping[str, object]) -> dict[str, object]:
    ops = run_config.get("ops")
    op_config = ops.get(REQUEST_OP) if isinstance(ops, Mapping) else None
    config = op_config.get("config") if isinstance(op_config, Mapping) else None
    return dict(config) if isinstance(config, Mapping) else {}


@sensor(
    asset_selection=DOWNSTREAM_OF_RAW_SAMPLES,
    minimum_interval_seconds=15,
    default_status=DefaultSensorStatus.RUNNING,
    description=f"Turns each successful run of the job {REQUEST_JOB} (a recompute request made from the UI) into "
    "runs over whole users x days rectangles of the requested user-days.",
)
def recompute_requests(context: SensorEvaluationContext, warehouse: WarehouseResource) -> SensorResult | SkipReason:
    """The cursor is the storage id of the last request run dealt with; requests are taken in the order they were
    made, and the sensor stops at the first one still running (so a later request never overtakes it)."""
    after = int(context.cursor or 0)
    records: list[RunRecord] = []
    page_after: str | None = None
    while True:  # newest first, page by page, back to the last request dealt with
        page = context.instance.get_run_records(filters=RunsFilter(job_name=REQUEST_JOB), limit=100, cursor=page_after)
        records.extend(r for r in page if r.storage_id > after)
        if len(page) < 100 or page[-1].storage_id <= after:
            break
        page_after = page[-1].dagster_run.run_id
    handled = after
    requests: list[RunRequest] = []
    notes: list[str] = []
    with psycopg_connection(warehouse.engine()) as conn:
        planner = RunPlanner(context.instance, conn, targets(context))
        for record in sorted(records, key=lambda r: r.storage_id):
            run = record.dagster_run
            if not run.is_finished:
                break
            handled = record.storage_id
            if run.status != DagsterRunStatus.SUCCESS:
                continue
            try:
                pairs = RecomputeRequest.from_config(_op_config(run.run_config)).user_days(warehouse.engine())
            except RequestError as exc:  # checked when it was made; the data cannot have vanished, but say so
                notes.append(f"request {run.run_id}: {exc}")
                continue
            made = planner.run_requests(pairs, {REQUEST_TAG: run.run_id})
            notes.append(f"request {run.run_id}: {len(pairs):,} user-days in {len(made)} run(s)")
            requests.extend(made)
    for note in notes:
        context.log.info(note)
    if not requests:
        return SensorResult(
            cursor=str(handled), skip_reason=SkipReason("; ".join(notes) or "no new recompute requests")
        )
    return SensorResult(
        run_requests=requests, dynamic_partitions_requests=planner.partition_requests(), cursor=str(handled)
    )


@sensor(
    asset_selection=DOWNSTREAM_OF_RAW_SAMPLES,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Recomputes every day with data of a user whose source priority changed (healthpipe users priority, "
    "PUT /v1/me/source-priority): runs over users x days rectangles, tagged healthpipe/priority-changes.",
)
def source_priority_changes(
    context: SensorEvaluationContext, warehouse: WarehouseResource
) -> SensorResult | SkipReason:
    """The cursor is the id of the last change dealt with (``app.source_priority_changes``)."""
    after = int(context.cursor or 0)
    with psycopg_connection(warehouse.engine()) as conn:
        changes = conn.execute(
            sql("settled_priority_changes").encode(), {"after": after, "settle": PRIORITY_SETTLE}
        ).fetchall()
        if not changes:
            return SkipReason(f"no source priority changes after {after}")
        upto = int(changes[-1][0])  # type: ignore[call-overload]
        users = sorted({str(row[1]) for row in changes})
        pairs = user_days(warehouse.engine(), users, None, None, missing_ok=True)
        if not pairs:
            return SensorResult(cursor=str(upto), skip_reason=SkipReason(f"{', '.join(users)}: no raw samples yet"))
        planner = RunPlanner(context.instance, conn, targets(context))
        requests = planner.run_requests(pairs, {PRIORITY_TAG: f"{after + 1}-{upto}"})
    context.log.info(
        f"source priority changed for {', '.join(users)}: {len(pairs):,} user-days in {len(requests)} run(s)"
    )
    return SensorResult(
        run_requests=requests, dynamic_partitions_requests=planner.partition_requests(), cursor=str(upto)
    )


def freshness_due(instance: DagsterInstance, key: AssetCheckKey, now: float) -> str | None:
    """Why the freshness check ``key`` of an observed asset should be evaluated now, or None. Dagster's
    build_sensor_for_freshness_checks re-evaluates a failed check only after a materialization, which an observed
    asset never has; here a failed check is evaluated again once an observation says rows landed after the ones it
    saw, and a passed one once it can be overdue."""
    summary = instance.event_log_storage.get_asset_check_summary_records([key])[key]
    latest = summary.last_check_execution_record
    if latest is None:
        return "never evaluated"
    if latest.status == AssetCheckExecutionRecordStatus.PLANNED:
        run = instance.get_run_by_id(latest.run_id)
        if run is not None and not run.is_finished:
            return None  # being evaluated
    done = summary.last_completed_check_execution_record
    evaluation = done.event.asset_check_evaluation if done is not None and done.event is not None else None
    if evaluation is None:
        return "no completed evaluation"
    if evaluation.passed:
        until = evaluation.metadata.get(FRESH_UNTIL_METADATA_KEY)
        return "it can be overdue now" if until is None or float(until.value) <= now else None  # type: ignore[arg-type]
    seen = evaluation.metadata.get(LAST_UPDATED_TIMESTAMP_METADATA_KEY)
    observed = instance.fetch_observations(AssetRecordsFilter(asset_key=key.asset_key), limit=1).records
    event = observed[0].asset_observation if observed else None
    landed = event.metadata.get(LAST_UPDATED_TIMESTAMP_METADATA_KEY) if event is not None else None
    if landed is not None and (seen is None or float(landed.value) > float(seen.value)):  # type: ignore[arg-type]
        return "rows landed since it failed"
    return None


RAW_FRESHNESS_KEYS = [key for check in RAW_FRESHNESS_CHECKS for key in check.check_keys]


@sensor(
    asset_selection=AssetSelection.checks(*RAW_FRESHNESS_CHECKS),
    minimum_interval_seconds=300,
    default_status=DefaultSensorStatus.RUNNING,
    description="Has the freshness check of raw_samples evaluated (a short run of that check alone) when its answer "
    "can change: never evaluated, passed but now possibly overdue, or failed and rows landed since.",
)
def raw_samples_freshness(context: SensorEvaluationContext) -> RunRequest | SkipReason:
    now = dt.datetime.now(dt.UTC).timestamp()
    due = [key for key in RAW_FRESHNESS_KEYS if freshness_due(context.instance, key, now)]
    if not due:
        return SkipReason("the freshness check of raw_samples cannot change until rows land or time passes")
    return RunRequest(asset_check_keys=due)
