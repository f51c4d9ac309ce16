"""Assets of the samples domain. A run works through its user-days in chunks (``runner.py``: 500 at a time, loading,
computing and writing overlapped), each chunk vectorized and replaced atomically, so memory stays bounded and
progress shows in the run's log. The policy is single-run; Dagster's asset
backfill daemon nevertheless splits a user x day backfill into one run per user (it packs only along the time
dimension), so the sensors and ``healthpipe backfill`` launch runs with partition-range tags instead, each covering a
whole users x days rectangle (``run_plan.py``)."""

import warnings
from collections.abc import Sequence

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetSpec,
    BackfillPolicy,
    BetaWarning,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from pipeline.accounts import user_ids
from pipeline.infra.database import psycopg_connection
from pipeline.ingest.retention import frozen_through, recomputable
from pipeline.resources import WarehouseResource
from pipeline.samples.io import sql
from pipeline.samples.partitions import USER_SHARDS, keys_to_frame, shard_of, user_day_partitions
from pipeline.samples.process import Summary
from pipeline.samples.run_plan import PARTITIONS_TAG
from pipeline.samples.runner import CHUNK_USER_DAYS, aggregate_user_days, deduplicate_user_days

# backfill_policy is marked beta in Dagster 1.13; we use it knowingly, so do not print the warning on every import
warnings.filterwarnings("ignore", category=BetaWarning, message=".*backfill_policy.*")

PARTITIONS_PER_CHUNK = CHUNK_USER_DAYS  # read at run time: tests make it small to get several chunks
BACKFILL = BackfillPolicy.single_run()


# Where the data enters: samples land in raw.samples (and what cannot land in raw.quarantine) from imports and device
# sync, outside Dagster. Declared so that lineage starts there; the batch sensor records one observation per finished
# ingest batch, and nothing ever materializes it.
raw_samples = AssetSpec(
    "raw_samples",
    group_name="raw",
    kinds={"postgres"},
    description="raw.samples (append-only) and raw.quarantine: samples as they land from imports (healthpipe import: "
    "Apple Health export, NDJSON, CSV) and device sync (POST /v1/me/devices/{device}/sync). External: landed by the "
    "ingest, observed once per finished ingest batch by the sensor new_raw_batches (rows read, landed, rejected, "
    "duplicates, source kind, last landed time).",
)


def run_user_days(context: AssetExecutionContext, warehouse: WarehouseResource) -> pd.DataFrame:
    """The (user_id, local_date) pairs of this run (a shard key expands to its users)."""
    planned = context.run.tags.get(PARTITIONS_TAG)
    if planned is not None and int(planned) != len(context.partition_keys):
        # A range over the dynamic user dimension follows the order users were added in; if that changed after the
        # run was planned (a user added or deleted in between), the range no longer is the planned rectangle.
        raise Failure(
            f"this run's partition range expands to {len(context.partition_keys)} partitions, not the {planned} it "
            "was planned with: the user partitions changed in between. Request these user-days again."
        )
    return user_days_of(context.partition_keys, warehouse)


def user_days_of(keys: Sequence[str], warehouse: WarehouseResource) -> pd.DataFrame:
    """(user_id, local_date) pairs of partition keys (a shard key expands to its users), less the days frozen by
    the raw retention (`pipeline.ingest.retention`: their raw months are detached, their rows stay as computed)."""
    shards: dict[str, list[str]] | None = None
    with psycopg_connection(warehouse.engine()) as conn:
        frozen = frozen_through(conn)
        if USER_SHARDS:
            shards = {}
            for user in user_ids(conn):
                shards.setdefault(shard_of(user), []).append(user)
    return recomputable(keys_to_frame(keys, shards), frozen)


@asset(
    partitions_def=user_day_partitions,
    backfill_policy=BACKFILL,
    group_name="samples",
    kinds={"postgres", "pandas"},
    deps=[raw_samples],
    description="Raw samples of the partitions' windows, validated with Great Expectations and deduplicated across "
    "sources: core.slices (who won each slice), core.readings, core.sleep_sessions, core.source_totals, "
    "core.rejections, core.partition_stats.",
)
def deduplicated_samples(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult[None]:
    user_days = run_user_days(context, warehouse)
    context.log.info(f"deduplicating {len(user_days)} user-days of {user_days['user_id'].nunique()} users")

    def progress(summary: Summary) -> None:
        context.log.info(
            f"{summary.partitions}/{len(user_days)} user-days deduplicated ({summary.raw_rows:,} samples; "
            f"seconds so far by phase, overlapping: {summary.seconds})"
        )

    summary = deduplicate_user_days(warehouse.url, user_days, progress, PARTITIONS_PER_CHUNK)
    return MaterializeResult(
        metadata={
            "user_days": summary.partitions,
            "rows_in": summary.raw_rows,
            "rejected": summary.rejected,
            "accepted": summary.accepted,
            "exact_duplicates_removed": summary.exact_duplicates,
            "validation_pass_rate": MetadataValue.float(round(summary.pass_rate, 5)),
            "slices_out": summary.slices,
            "readings_out": summary.readings,
            "kept_share_by_device_class": MetadataValue.json(summary.source_shares),
            "great_expectations": MetadataValue.json(summary.suites),
            "seconds_by_phase": MetadataValue.json(summary.seconds),
        }
    )


def _aggregate(context: AssetExecutionContext, warehouse: WarehouseResource, model: str) -> MaterializeResult[None]:
    user_days = run_user_days(context, warehouse)

    def progress(done: int, rows: int) -> None:
        context.log.info(f"marts.{model}: {done}/{len(user_days)} user-days, {rows:,} rows")

    rows = aggregate_user_days(warehouse.url, user_days, model, progress, PARTITIONS_PER_CHUNK)
    preview: list[tuple[object, ...]] = []
    if len(user_days):
        with warehouse.engine().connect() as conn:
            preview = [
                tuple(row)
                for row in conn.exec_driver_sql(
                    sql("mart_preview", {"mart": f"marts.{model}"}),
                    {"user": user_days["user_id"].iloc[0], "day": user_days["local_date"].iloc[0]},
                )
            ]
    table = "| user | day | metric | value |\n|---|---|---|---|\n" + "\n".join(
        f"| {u} | {d} | {m} | {v} |" for u, d, m, v in preview
    )
    return MaterializeResult(
        metadata={"user_days": len(user_days), "rows_out": rows, "preview": MetadataValue.md(table)}
    )


@asset(
    partitions_def=user_day_partitions,
    backfill_policy=BACKFILL,
    group_name="samples",
    kinds={"postgres", "sql"},
    deps=[deduplicated_samples],
    description="marts.hourly: value, sum, count, min, max, latest per user, metric and local hour (DST-aware).",
)
def hourly_aggregates(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult[None]:
    return _aggregate(context, warehouse, "hourly")


@asset(
    partitions_def=user_day_partitions,
    backfill_policy=BACKFILL,
    group_name="samples",
    kinds={"postgres", "sql"},
    deps=[hourly_aggregates],
    description="marts.daily: the exact roll-up of marts.hourly; sleep by wake-up day.",
)
def daily_aggregates(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult[None]:
    return _aggregate(context, warehouse, "daily")
