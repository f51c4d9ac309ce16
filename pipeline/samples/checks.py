"""Asset checks of the samples domain. Blocking where a failure means the data is wrong (downstream must not run)."""

from dagster import AssetCheckResult, AssetCheckSeverity, asset_check

from pipeline.resources import WarehouseResource
from pipeline.samples.assets import daily_aggregates, deduplicated_samples

MIN_PASS_RATE = 0.95
_TOLERANCE = 1e-6
# Per user, day and cumulative metric: what was kept, what all sources reported, and the largest single source.
_CUMULATIVE_DAY_TOTALS = """
    SELECT sum(kept) AS kept, sum(raw) AS raw, max(raw) AS largest FROM core.source_totals
    WHERE metric IN ('STEPS', 'DISTANCE', 'ACTIVE_ENERGY') GROUP BY user_id, local_date, metric"""


def _scalar(warehouse: WarehouseResource, query: str) -> float:
    with warehouse.engine().connect() as conn:
        value = conn.exec_driver_sql(query).scalar()
    return float(value or 0)


@asset_check(asset=deduplicated_samples, blocking=True, description="raw = accepted + rejected, per partition")
def conservation(warehouse: WarehouseResource) -> AssetCheckResult:
    broken = _scalar(warehouse, "SELECT count(*) FROM core.partition_stats WHERE raw_rows <> accepted + rejected")
    rows = _scalar(warehouse, "SELECT coalesce(sum(raw_rows), 0) FROM core.partition_stats")
    return AssetCheckResult(
        passed=broken == 0, metadata={"partitions_out_of_balance": int(broken), "raw_rows": int(rows)}
    )


@asset_check(
    asset=deduplicated_samples,
    blocking=True,
    description="no two winning slices of a user and metric overlap (in-bed intervals are their own layer)",
)
def winning_slices_do_not_overlap(warehouse: WarehouseResource) -> AssetCheckResult:
    overlaps = _scalar(
        warehouse,
        """
        SELECT count(*) FROM (
            SELECT slice_start_utc < lag(slice_end_utc) OVER (
                       PARTITION BY user_id, metric, (stage = 'in_bed') ORDER BY slice_start_utc, slice_end_utc
                   ) AS overlapping
            FROM core.slices WHERE won AND slice_end_utc > slice_start_utc
        ) s WHERE overlapping""",
    )
    return AssetCheckResult(passed=overlaps == 0, metadata={"overlapping_slices": int(overlaps)})


@asset_check(
    asset=deduplicated_samples,
    blocking=True,
    description="per user, metric and day, the kept total of "
    "cumulative metrics is never above the sum of what every source reported",
)
def kept_never_above_raw_sum(warehouse: WarehouseResource) -> AssetCheckResult:
    above = _scalar(
        warehouse,
        f"""
        SELECT count(*) FROM ({_CUMULATIVE_DAY_TOTALS}) t WHERE kept > raw * (1 + {_TOLERANCE}) + {_TOLERANCE}""",
    )
    return AssetCheckResult(passed=above == 0, metadata={"user_day_metrics_above": int(above)})


@asset_check(
    asset=deduplicated_samples,
    blocking=False,
    description="the kept total is not below the largest single "
    "source's (it can be, legitimately, when a trusted source counted less than a lesser one: a warning)",
)
def kept_not_below_largest_source(warehouse: WarehouseResource) -> AssetCheckResult:
    below = _scalar(
        warehouse,
        f"""
        SELECT count(*) FROM ({_CUMULATIVE_DAY_TOTALS}) t WHERE kept < largest * 0.99""",
    )
    return AssetCheckResult(
        passed=below == 0, severity=AssetCheckSeverity.WARN, metadata={"user_day_metrics_below": int(below)}
    )


@asset_check(
    asset=deduplicated_samples, blocking=False, description=f"at least {MIN_PASS_RATE:.0%} of raw rows pass validation"
)
def validation_pass_rate(warehouse: WarehouseResource) -> AssetCheckResult:
    rate = _scalar(
        warehouse, "SELECT coalesce(sum(accepted)::float / nullif(sum(raw_rows), 0), 1) FROM core.partition_stats"
    )
    return AssetCheckResult(
        passed=rate >= MIN_PASS_RATE, severity=AssetCheckSeverity.WARN, metadata={"pass_rate": round(rate, 5)}
    )


@asset_check(
    asset=daily_aggregates,
    blocking=True,
    description="for cumulative metrics, the hourly rows of a day sum to its daily value",
)
def hourly_sums_equal_daily(warehouse: WarehouseResource) -> AssetCheckResult:
    mismatches = _scalar(
        warehouse,
        f"""
        SELECT count(*) FROM marts.daily d
        JOIN (SELECT user_id, local_date, metric, sum(sum) AS total FROM marts.hourly
              WHERE metric IN ('STEPS', 'DISTANCE', 'ACTIVE_ENERGY') GROUP BY 1, 2, 3) h
          USING (user_id, local_date, metric)
        WHERE abs(d.value - h.total) > {_TOLERANCE} * greatest(1, abs(h.total))""",
    )
    return AssetCheckResult(passed=mismatches == 0, metadata={"mismatched_days": int(mismatches)})


CHECKS = [
    conservation,
    winning_slices_do_not_overlap,
    kept_never_above_raw_sum,
    kept_not_below_largest_source,
    validation_pass_rate,
    hourly_sums_equal_daily,
]
