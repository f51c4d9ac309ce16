"""The health score asset: partitioned by local day, each day scored for its whole cohort at once.

A score is relative to the day's users (winsorized at the cohort's percentiles, then min-max normalized across the
day), so the unit of work is a day for every user, as for the insights: a range of days is one pass (a year of days
from the UI's Materialize dialog is one run: single-run backfill policy). It depends on the user x day daily marts
and on ``marts/cohort_daily`` (the dbt model of the same range runs) through the day dimension.
"""

import datetime as dt
import warnings

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    BetaWarning,
    MaterializeResult,
    MetadataValue,
    MultiToSingleDimensionPartitionMapping,
    asset,
)

from pipeline.insights.partitions import day_partitions
from pipeline.resources import WarehouseResource
from pipeline.samples.assets import daily_aggregates
from pipeline.scores.compute import score_range

warnings.filterwarnings("ignore", category=BetaWarning, message=".*backfill_policy.*")
warnings.filterwarnings("ignore", category=BetaWarning, message=".*MultiToSingleDimensionPartitionMapping.*")

COHORT_DAILY = AssetKey(["marts", "cohort_daily"])
_BY_DAY = MultiToSingleDimensionPartitionMapping("day")


@asset(
    partitions_def=day_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="insights",
    kinds={"postgres", "pandas"},
    deps=[AssetDep(daily_aggregates, partition_mapping=_BY_DAY), AssetDep(COHORT_DAILY, partition_mapping=_BY_DAY)],
    description="marts.health_scores: per user and local day, a 0-100 health score from activity, sleep and vitals "
    "components, winsorized at the day's cohort percentiles and min-max normalized across its users "
    "(docs/health-score.md), with each component, the completeness and the users scored that day.",
)
def health_scores(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult[None]:
    window = context.partition_time_window
    first_day, last_day = window.start.date(), (window.end - dt.timedelta(days=1)).date()
    context.log.info(f"scoring {first_day}..{last_day} for every user")
    result = score_range(warehouse.url, first_day, last_day)
    if result.bounds_missing:
        context.log.warning(
            f"{result.bounds_missing} (day, input) pairs had no marts.cohort_daily row: winsorized at their own "
            "percentiles"
        )
    return MaterializeResult(
        metadata={
            "days": (last_day - first_day).days + 1,
            "scores": result.scores,
            "users": result.users,
            "score_distribution": MetadataValue.json(result.distribution),
            "completeness": MetadataValue.json(result.completeness),
            "bounds_missing": result.bounds_missing,
            "seconds_by_phase": MetadataValue.json(result.seconds),
        }
    )
