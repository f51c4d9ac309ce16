"""Asset checks of the samples domain. Blocking where a failure means the data is wrong (downstream must not run).

Each check looks at the user-days of its run (the partition range in the run's tags), so its cost follows the run,
not the size of the warehouse; a check run on its own, outside a partitioned run, looks at everything. The five
checks of ``deduplicated_samples`` are one step (a multi-asset check): Dagster's cost per step exceeds their queries'.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    PartitionKeyRange,
    asset_check,
    multi_asset_check,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)

from pipeline.resources import WarehouseResource
from pipeline.samples.assets import daily_aggregates, deduplicated_samples, user_days_of
from pipeline.samples.io import PARTITIONS_TABLE, ArrowConnection, arrow_connection, fetch, stage_partitions
from pipeline.samples.partitions import user_day_partitions

MIN_PASS_RATE = 0.95
_TOLERANCE = 1e-6


@dataclass(frozen=True)
class _Outcome:
    passed: bool
    metadata: dict[str, Any]


class _Scope:
    """SQL that restricts a per-partition table to the run's user-days (or to nothing, for a whole-warehouse
    check)."""

    def __init__(self, conn: ArrowConnection, staged: bool) -> None:
        self.conn = conn
        self.staged = staged

    def rows(self, table: str) -> str:
        """``table`` as ``t``, cut to the run's user-days."""
        if not self.staged:
            return f"{table} t"
        return f"{table} t JOIN {PARTITIONS_TABLE} p ON p.user_id = t.user_id AND p.local_date = t.local_date"

    def scalar(self, query: str) -> float:
        value = fetch(self.conn, query).column(0)[0].as_py()
        return float(value or 0)


@contextmanager
def _scope(context: AssetCheckExecutionContext, warehouse: WarehouseResource) -> Iterator[_Scope]:
    tags = context.run.tags
    start, end = tags.get(ASSET_PARTITION_RANGE_START_TAG), tags.get(ASSET_PARTITION_RANGE_END_TAG)
    if start and end:
        keys = user_day_partitions.get_partition_keys_in_range(
            PartitionKeyRange(start, end), dynamic_partitions_store=context.instance
        )
    elif tags.get(PARTITION_NAME_TAG):
        keys = [tags[PARTITION_NAME_TAG]]
    else:
        keys = []
    with arrow_connection(warehouse.url) as conn:
        if keys:
            stage_partitions(conn, user_days_of(keys, warehouse))
        try:
            yield _Scope(conn, staged=bool(keys))
        finally:
            conn.rollback()  # read-only: end the transaction the reads opened


def _cumulative_day_totals(scope: _Scope) -> str:
    """Per user, day and cumulative metric: what was kept, what all sources reported, and the largest source."""
    return f"""
        SELECT sum(t.kept) AS kept, sum(t.raw) AS raw, max(t.raw) AS largest FROM {scope.rows("core.source_totals")}
        WHERE t.metric IN ('STEPS', 'DISTANCE', 'ACTIVE_ENERGY') GROUP BY t.user_id, t.local_date, t.metric"""


def conservation(scope: _Scope) -> _Outcome:
    table = scope.rows("core.partition_stats")
    broken = scope.scalar(
        f"SELECT count(*) FROM {table} WHERE t.raw_rows <> t.accepted + t.rejected + t.exact_duplicates"
    )
    totals = fetch(
        scope.conn,
        "SELECT coalesce(sum(t.raw_rows), 0), coalesce(sum(t.accepted), 0), coalesce(sum(t.rejected), 0), "
        f"coalesce(sum(t.exact_duplicates), 0) FROM {table}",
    )
    raw, accepted, rejected, duplicates = (int(column[0].as_py()) for column in totals.columns)
    metadata = {
        "partitions_out_of_balance": int(broken),
        "raw_rows": raw,
        "accepted": accepted,
        "rejected": rejected,
        "exact_duplicates": duplicates,
    }
    return _Outcome(broken == 0, metadata)


def winning_slices_do_not_overlap(scope: _Scope) -> _Outcome:
    window = (
        f"""JOIN (SELECT user_id, min(local_date) - 1 AS first_day, max(local_date) + 1 AS last_day
                  FROM {PARTITIONS_TABLE} GROUP BY user_id) w
              ON w.user_id = s.user_id AND s.local_date BETWEEN w.first_day AND w.last_day"""
        if scope.staged
        else ""
    )
    overlaps = scope.scalar(
        f"""
        SELECT count(*) FROM (
            SELECT s.slice_start_utc < lag(s.slice_end_utc) OVER (
                       PARTITION BY s.user_id, s.metric, (s.stage = 'in_bed')
                       ORDER BY s.slice_start_utc, s.slice_end_utc
                   ) AS overlapping
            FROM core.slices s {window}
            WHERE s.won AND s.slice_end_utc > s.slice_start_utc
        ) o WHERE overlapping"""
    )
    return _Outcome(overlaps == 0, {"overlapping_slices": int(overlaps)})


def kept_never_above_raw_sum(scope: _Scope) -> _Outcome:
    above = scope.scalar(
        f"""SELECT count(*) FROM ({_cumulative_day_totals(scope)}) d
            WHERE kept > raw * (1 + {_TOLERANCE}) + {_TOLERANCE}"""
    )
    return _Outcome(above == 0, {"user_day_metrics_above": int(above)})


def kept_not_below_largest_source(scope: _Scope) -> _Outcome:
    below = scope.scalar(f"SELECT count(*) FROM ({_cumulative_day_totals(scope)}) d WHERE kept < largest * 0.99")
    return _Outcome(below == 0, {"user_day_metrics_below": int(below)})


def validation_pass_rate(scope: _Scope) -> _Outcome:
    rate = scope.scalar(
        "SELECT coalesce(sum(t.accepted + t.exact_duplicates)::float / nullif(sum(t.raw_rows), 0), 1) "
        f"FROM {scope.rows('core.partition_stats')}"
    )
    return _Outcome(rate >= MIN_PASS_RATE, {"pass_rate": round(rate, 5)})


# name -> (blocking, description, evaluation). Blocking where a failure means the data is wrong; the others warn.
_SAMPLE_CHECKS: dict[str, tuple[bool, str, Callable[[_Scope], _Outcome]]] = {
    "conservation": (
        True,
        "raw = accepted + rejected + exact duplicates, per partition (accepted: passed validation, not a copy)",
        conservation,
    ),
    "winning_slices_do_not_overlap": (
        True,
        "no two winning slices of a user and metric overlap (in-bed intervals are their own layer); "
        "a run's slices are compared with each other and with those of the day either side",
        winning_slices_do_not_overlap,
    ),
    "kept_never_above_raw_sum": (
        True,
        "per user, metric and day, the kept total of cumulative metrics is never above the sum of what every "
        "source reported",
        kept_never_above_raw_sum,
    ),
    "kept_not_below_largest_source": (
        False,
        "the kept total is not below the largest single source's (it can be, legitimately, when a trusted source "
        "counted less than a lesser one: a warning)",
        kept_not_below_largest_source,
    ),
    "validation_pass_rate": (
        False,
        f"at least {MIN_PASS_RATE:.0%} of raw rows pass validation",
        validation_pass_rate,
    ),
}


@multi_asset_check(
    specs=[
        AssetCheckSpec(name, asset=deduplicated_samples, blocking=blocking, description=description)
        for name, (blocking, description, _) in _SAMPLE_CHECKS.items()
    ],
    can_subset=True,
    description="The checks of deduplicated_samples, in one step: one connection and one staging of the run's "
    "user-days for all of them (a step costs Dagster about half a second whatever it does).",
)
def deduplicated_samples_checks(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource
) -> Iterator[AssetCheckResult]:
    selected = {key.name for key in context.selected_asset_check_keys}
    with _scope(context, warehouse) as scope:
        for name, (blocking, _, evaluate) in _SAMPLE_CHECKS.items():
            if name in selected:
                outcome = evaluate(scope)
                yield AssetCheckResult(
                    check_name=name,
                    asset_key=deduplicated_samples.key,
                    passed=outcome.passed,
                    severity=AssetCheckSeverity.ERROR if blocking else AssetCheckSeverity.WARN,
                    metadata=outcome.metadata,
                )


def daily_rows_add_up_their_hours(scope: _Scope) -> _Outcome:
    """Cumulative metrics: the day's value is the sum of its hours'. Every metric but sleep (counted by wake-up
    day): the day's flagged_count is the sum of its hours', so leaving flagged samples out works at either grain."""
    mismatches = fetch(
        scope.conn,
        f"""
        SELECT count(*) FILTER (WHERE t.metric IN ('STEPS', 'DISTANCE', 'ACTIVE_ENERGY')
                                  AND abs(t.value - h.total) > {_TOLERANCE} * greatest(1, abs(h.total))),
               count(*) FILTER (WHERE t.flagged_count <> h.flagged)
        FROM {scope.rows("marts.daily")}
        JOIN (SELECT t.user_id, t.local_date, t.metric, sum(t.sum) AS total, sum(t.flagged_count) AS flagged
              FROM {scope.rows("marts.hourly")} WHERE t.metric <> 'SLEEP_ANALYSIS' GROUP BY 1, 2, 3) h
          ON h.user_id = t.user_id AND h.local_date = t.local_date AND h.metric = t.metric""",
    )
    days, flagged = (int(column[0].as_py() or 0) for column in mismatches.columns)
    return _Outcome(days == 0 and flagged == 0, {"mismatched_days": days, "mismatched_flagged_counts": flagged})


@asset_check(
    asset=daily_aggregates,
    blocking=True,
    description="for cumulative metrics, the hourly rows of a day sum to its daily value; for every metric but "
    "sleep, the hours' flagged counts sum to the day's",
)
def hourly_sums_equal_daily(context: AssetCheckExecutionContext, warehouse: WarehouseResource) -> AssetCheckResult:
    with _scope(context, warehouse) as scope:
        outcome = daily_rows_add_up_their_hours(scope)
    return AssetCheckResult(passed=outcome.passed, metadata=outcome.metadata)


CHECKS = [deduplicated_samples_checks, hourly_sums_equal_daily]
