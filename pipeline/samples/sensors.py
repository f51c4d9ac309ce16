"""Newly landed raw batches -> run requests for exactly the user-days they touch."""

import datetime as dt
import json

from dagster import (
    AddDynamicPartitionsRequest,
    AssetKey,
    DefaultSensorStatus,
    DynamicPartitionsDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset
from dagster._core.definitions.events import AssetKeyPartitionKey
from dagster._core.definitions.run_request import RunRequest

from pipeline.ingest.store import psycopg_connection
from pipeline.resources import WarehouseResource
from pipeline.samples.assets import daily_aggregates, deduplicated_samples, hourly_aggregates
from pipeline.samples.io import sql
from pipeline.samples.partitions import DAY_START, USER_SHARDS, USERS_PARTITION, partition_key, shard_of

ASSETS = (deduplicated_samples, hourly_aggregates, daily_aggregates)


def _cursor(text: str | None) -> dict[str, object]:
    state = json.loads(text) if text else {}
    return {"batch": int(state.get("batch", 0)), "pending": list(state.get("pending", []))}


@sensor(
    asset_selection=list(ASSETS),
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Turns finished ingest batches into one backfill of the (user, day) partitions they touch. Days "
    "still open in the user's zone are held back until they end, then requested.",
)
def new_raw_batches(context: SensorEvaluationContext, warehouse: WarehouseResource) -> SensorResult | SkipReason:
    state = _cursor(context.cursor)
    after = int(state["batch"])  # type: ignore[call-overload]
    with psycopg_connection(warehouse.engine()) as conn:
        row = conn.execute(
            "SELECT coalesce(max(batch_id), %s) FROM app.ingest_batches WHERE status = 'done' AND batch_id > %s "
            "AND NOT EXISTS (SELECT 1 FROM app.ingest_batches r WHERE r.status = 'running' AND r.batch_id <= "
            "app.ingest_batches.batch_id)",
            (after, after),
        ).fetchone()
        upto = int(row[0]) if row else after  # type: ignore[call-overload]
        affected = conn.execute(sql("affected_user_days").encode(), {"after": after, "upto": upto}).fetchall()
    today = dt.date.today()
    pending = {(u, d) for u, d in state["pending"]}  # type: ignore[attr-defined]
    ready: set[tuple[str, str]] = set()
    for user, day, still_open in affected:
        key = (str(user), str(day))
        (pending if still_open else ready).add(key)
    for user, day in list(pending):  # released once their day has ended (checked with a day's margin in UTC)
        if dt.date.fromisoformat(day) < today - dt.timedelta(days=1):
            pending.discard((user, day))
            ready.add((user, day))
    ready = {(u, d) for u, d in ready if DAY_START <= d <= str(today + dt.timedelta(days=1))}
    new_cursor = json.dumps({"batch": upto, "pending": sorted(pending)})
    if not ready:
        return SensorResult(cursor=new_cursor, skip_reason=SkipReason(f"no finished user-days after batch {after}"))
    ready = as_rectangle(ready)
    users = sorted({u for u, _ in ready})
    dimension = [shard_of(u) for u in users] if USER_SHARDS else users
    keys = {partition_key(shard_of(u) if USER_SHARDS else u, d) for u, d in ready}
    subset = AssetGraphSubset.from_asset_partition_set(
        {AssetKeyPartitionKey(AssetKey(a.key.path), str(k)) for a in ASSETS for k in keys},
        context.repository_def.asset_graph,  # type: ignore[union-attr]
    )
    # RunRequest.for_asset_graph_subset makes the daemon launch a backfill (which honours the backfill policy and
    # packs partitions into few runs); Dagster marks this constructor as not yet public.
    request = RunRequest.for_asset_graph_subset(subset, tags={"healthpipe/batches": f"{after + 1}-{upto}"})
    return SensorResult(
        run_requests=[request],
        dynamic_partitions_requests=[] if USER_SHARDS else [_add_users(dimension)],
        cursor=new_cursor,
    )


def as_rectangle(pairs: set[tuple[str, str]], max_growth: float = 2.0) -> set[tuple[str, str]]:
    """The users x days rectangle covering ``pairs`` when it is at most ``max_growth`` times larger. A backfill packs
    only rectangles of partitions into one run; users' day ranges differ by a day or two (time zones), and without
    this a batch of 50 users would become 50 runs. The extra user-days have no data and cost milliseconds."""
    if not pairs:
        return pairs
    users = sorted({u for u, _ in pairs})
    days = sorted({d for _, d in pairs})
    first, last = dt.date.fromisoformat(days[0]), dt.date.fromisoformat(days[-1])
    span = [str(first + dt.timedelta(days=i)) for i in range((last - first).days + 1)]
    if len(users) * len(span) > max_growth * len(pairs):
        return pairs
    return {(u, d) for u in users for d in span}


def _add_users(users: list[str]) -> AddDynamicPartitionsRequest:
    return DynamicPartitionsDefinition(name=USERS_PARTITION).build_add_request(users)
