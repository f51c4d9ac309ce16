"""The insights asset: partitioned by local day, each day evaluated for every user at once.

Why days and not user x day: every rule compares a user's window with thresholds, and every user's windows of a day
come out of one pass of rolling windows over a days x users frame; a run evaluates a range of days the same way
(1,000 users x 90 days in a few seconds, ``benchmarks/insights.py``). A user x day partitioning would multiply the
partitions by the users for no gain (Dagster splits such backfills per user). The dependency on the user x day marts
maps a day to all users' partitions of that day; the windows also read the ``LOOKBACK_DAYS - 1`` days before, which
the sensor ``insights_late_data`` covers: marts that change on a past day re-evaluate the insight days whose windows
hold it, for that day's users only (run config ``users``).

The backfill policy is single-run: a year of days from the UI's Materialize dialog is one run.
"""

import datetime as dt
import warnings

from dagster import (
    AssetDep,
    AssetExecutionContext,
    BackfillPolicy,
    BetaWarning,
    Config,
    MaterializeResult,
    MetadataValue,
    MultiToSingleDimensionPartitionMapping,
    asset,
)
from pydantic import Field

from pipeline.insights.evaluate import evaluate_days
from pipeline.insights.partitions import day_partitions
from pipeline.resources import WarehouseResource
from pipeline.samples.assets import daily_aggregates

# beta in Dagster 1.13 and used knowingly (as in pipeline/samples/assets.py): not a warning on every import
warnings.filterwarnings("ignore", category=BetaWarning, message=".*backfill_policy.*")
warnings.filterwarnings("ignore", category=BetaWarning, message=".*MultiToSingleDimensionPartitionMapping.*")


class InsightsConfig(Config):
    """``users``: evaluate only these users (the late-data sensor's runs); empty: every user, and the days count as
    evaluated."""

    users: list[str] = Field(default_factory=list)


def _by_rule_and_severity(rows: list[dict[str, object]]) -> str:
    table = "| rule | severity | active | resolved |\n|---|---|---|---|\n"
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for row in rows:
        key = (str(row["rule"]), str(row["severity"]))
        counts.setdefault(key, {"active": 0, "resolved": 0})[str(row["status"])] = int(row["insights"])  # type: ignore[call-overload]
    return table + "\n".join(
        f"| {rule} | {severity} | {c['active']} | {c['resolved']} |" for (rule, severity), c in sorted(counts.items())
    )


@asset(
    partitions_def=day_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="insights",
    kinds={"postgres", "pandas"},
    deps=[AssetDep(daily_aggregates, partition_mapping=MultiToSingleDimensionPartitionMapping("day"))],
    description="marts.insights: the insight rules (docs/insights.md) evaluated as of each local day for every "
    "user: episodes with a deterministic id, severity, direction, message, recommendation and the numbers behind "
    "them, active or resolved; acknowledged_at is never reset. marts.insight_days holds each day's findings.",
)
def insights(
    context: AssetExecutionContext, config: InsightsConfig, warehouse: WarehouseResource
) -> MaterializeResult[None]:
    window = context.partition_time_window
    first_day, last_day = window.start.date(), (window.end - dt.timedelta(days=1)).date()
    users = sorted(set(config.users)) or None
    scope = f"{len(users)} user(s)" if users else "every user"
    context.log.info(f"evaluating insights of {first_day}..{last_day} for {scope}")
    result = evaluate_days(warehouse.url, first_day, last_day, users)
    active = sum(int(r["insights"]) for r in result.insights if r["status"] == "active")  # type: ignore[call-overload]
    by_severity: dict[str, int] = {}
    for row in result.insights:
        if row["status"] == "active":
            by_severity[str(row["severity"])] = by_severity.get(str(row["severity"]), 0) + int(row["insights"])  # type: ignore[call-overload]
    return MaterializeResult(
        metadata={
            "days": (last_day - first_day).days + 1,
            "users": result.users,
            "findings": result.findings,
            "findings_by_rule": MetadataValue.json(result.findings_by_rule),
            "active_insights": active,
            "active_by_severity": MetadataValue.json(by_severity),
            "insights_by_rule_and_severity": MetadataValue.md(_by_rule_and_severity(result.insights)),
            "seconds_by_phase": MetadataValue.json(result.seconds),
        }
    )
