"""Asset checks of the samples domain. Blocking where a failure means the data is wrong (downstream must not run).

Each check looks at the user-days of its run (the partition range in the run's tags), so its cost follows the run,
not the size of the warehouse; a check run on its own, outside a partitioned run, looks at everything. The checks of
an asset are one step (a multi-asset check): Dagster's cost per step exceeds their queries'.

The freshness check of ``raw_samples`` is apart: it reads the asset's observations in Dagster's event log, not the
warehouse, and runs on its own (sensor ``raw_samples_freshness``), never in a range run.
"""

import datetime as dt
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetsDefinition,
    PartitionKeyRange,
    asset_check,
    build_last_update_freshness_checks,
    multi_asset_check,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)

from pipeline.infra.settings import Settings
from pipeline.resources import WarehouseResource
from pipeline.samples.assets import daily_aggregates, deduplicated_samples, hourly_aggregates, raw_samples, user_days_of
from pipeline.samples.io import ArrowConnection, arrow_connection, fetch, sql, stage_partitions
from pipeline.samples.partitions import user_day_partitions

MIN_PASS_RATE = 0.95
_TOLERANCE = 1e-6  # relative: float sums taken in another order differ in the last digits


@dataclass(frozen=True)
class _Outcome:
    passed: bool
    metadata: dict[str, Any]


def _clause(name: str) -> str:
    """A SQL file holding one clause, as one line without its comments (it is spliced into another statement)."""
    return " ".join(line.strip() for line in sql(name).splitlines() if line.strip() and not line.startswith("--"))


class _Scope:
    """Runs the checks' queries (``sql/check_*.sql``) restricted to the run's user-days, or, for a whole-warehouse
    check, to nothing: their placeholders ``run partitions of t`` and ``run window of s`` become the joins to the
    staged partitions, or nothing."""

    def __init__(self, conn: ArrowConnection, staged: bool) -> None:
        self.conn = conn
        self.fragments = {
            "run partitions of t": _clause("check_scope_run_partitions") if staged else "",
            "run window of s": _clause("check_scope_run_window") if staged else "",
            "tolerance": str(_TOLERANCE),
        }
        self._results: dict[str, list[Any]] = {}

    def row(self, name: str) -> list[Any]:
        """The first row of the query ``sql/<name>.sql`` (asked once per step: two checks may read one query)."""
        if name not in self._results:
            table = fetch(self.conn, sql(name, self.fragments))
            self._results[name] = [column[0].as_py() for column in table.columns]
        return self._results[name]

    def counts(self, name: str) -> list[int]:
        return [int(value or 0) for value in self.row(name)]


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


def conservation(scope: _Scope) -> _Outcome:
    broken, raw, accepted, rejected, duplicates = scope.counts("check_conservation")
    metadata = {
        "partitions_out_of_balance": broken,
        "raw_rows": raw,
        "accepted": accepted,
        "rejected": rejected,
        "exact_duplicates": duplicates,
    }
    return _Outcome(broken == 0, metadata)


def winning_slices_do_not_overlap(scope: _Scope) -> _Outcome:
    (overlaps,) = scope.counts("check_winning_slices_do_not_overlap")
    return _Outcome(overlaps == 0, {"overlapping_slices": overlaps})


def kept_never_above_raw_sum(scope: _Scope) -> _Outcome:
    above, _ = scope.counts("check_kept_against_sources")
    return _Outcome(above == 0, {"user_day_metrics_above": above})


def kept_not_below_largest_source(scope: _Scope) -> _Outcome:
    _, below = scope.counts("check_kept_against_sources")
    return _Outcome(below == 0, {"user_day_metrics_below": below})


def validation_pass_rate(scope: _Scope) -> _Outcome:
    (rate,) = scope.row("check_validation_pass_rate")
    rate = float(rate or 0)
    return _Outcome(rate >= MIN_PASS_RATE, {"pass_rate": round(rate, 5)})


# name -> (blocking, description, evaluation). Blocking where a failure means the data is wrong; the others warn.
_Checks = Mapping[str, tuple[bool, str, Callable[[_Scope], _Outcome]]]

_SAMPLE_CHECKS: _Checks = {
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


def hourly_rows_within_their_local_day(scope: _Scope) -> _Outcome:
    (outside,) = scope.counts("check_hourly_rows_within_their_local_day")
    return _Outcome(outside == 0, {"rows_outside_their_day": outside})


def cumulative_hours_sum_to_kept_slices(scope: _Scope) -> _Outcome:
    """The kept slices' sum as deduplication recorded it (core.source_totals: per source, the winning slices'
    values), which the hours, built in SQL from core.slices, must reproduce: an end-to-end comparison, and cheaper
    than summing core.slices again (600 user-days, 514,000 slices: 0.08 s against 0.66 s)."""
    above, below = scope.counts("check_cumulative_hours_sum_to_kept_slices")
    return _Outcome(above == 0 and below == 0, {"user_day_metrics_above": above, "user_day_metrics_below": below})


_HOURLY_CHECKS: _Checks = {
    "hourly_rows_within_their_local_day": (
        True,
        "every marts.hourly row's local hour lies in its partition's local day",
        hourly_rows_within_their_local_day,
    ),
    "cumulative_hours_sum_to_kept_slices": (
        True,
        "per user, day and cumulative metric, the hours sum to what deduplication kept (the winning slices' values): "
        "never above it, and nothing kept is missing from the hours",
        cumulative_hours_sum_to_kept_slices,
    ),
}


def _checks_step(asset: AssetsDefinition, checks: _Checks) -> AssetChecksDefinition:
    """The checks of ``asset`` as one step: one connection and one staging of the run's user-days for all of them."""

    @multi_asset_check(
        name=f"{asset.key.path[-1]}_checks",
        specs=[
            AssetCheckSpec(name, asset=asset, blocking=blocking, description=description)
            for name, (blocking, description, _) in checks.items()
        ],
        can_subset=True,
        description=f"The checks of {asset.key.path[-1]}, in one step: one connection and one staging of the run's "
        "user-days for all of them (a step costs Dagster about half a second whatever it does).",
    )
    def _step(context: AssetCheckExecutionContext, warehouse: WarehouseResource) -> Iterator[AssetCheckResult]:
        selected = {key.name for key in context.selected_asset_check_keys}
        with _scope(context, warehouse) as scope:
            for name, (blocking, _, evaluate) in checks.items():
                if name in selected:
                    outcome = evaluate(scope)
                    yield AssetCheckResult(
                        check_name=name,
                        asset_key=asset.key,
                        passed=outcome.passed,
                        severity=AssetCheckSeverity.ERROR if blocking else AssetCheckSeverity.WARN,
                        metadata=outcome.metadata,
                    )

    return _step


deduplicated_samples_checks = _checks_step(deduplicated_samples, _SAMPLE_CHECKS)
hourly_aggregates_checks = _checks_step(hourly_aggregates, _HOURLY_CHECKS)


def daily_rows_add_up_their_hours(scope: _Scope) -> _Outcome:
    """Cumulative metrics: the day's value is the sum of its hours'. Every metric but sleep (counted by wake-up
    day): the day's flagged_count is the sum of its hours', so leaving flagged samples out works at either grain."""
    days, flagged = scope.counts("check_daily_rows_add_up_their_hours")
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


# The checks of the user x day assets (the range runs select them with their assets: pipeline/samples/selection.py).
CHECKS = [deduplicated_samples_checks, hourly_aggregates_checks, hourly_sums_equal_daily]

# raw_samples is observed, never materialized. Dagster 1.13's FreshnessPolicy evaluator reads only the last
# materialization (an observed asset stays UNKNOWN) and build_time_partition_freshness_checks needs a time-partitioned
# asset; build_last_update_freshness_checks takes the latest observation's dagster/last_updated_timestamp, which the
# batch sensor sets to when rows last landed. It is marked superseded in 1.13: used knowingly, without the warning.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    RAW_FRESHNESS_CHECKS = build_last_update_freshness_checks(
        assets=[raw_samples.key],
        lower_bound_delta=dt.timedelta(hours=Settings().raw_freshness_hours),
        severity=AssetCheckSeverity.WARN,
    )
