"""Aggregate rows (api/queries/aggregates.py) as the answer's series: one per requested type, points oldest first.
Shared by the aggregates route and the public view of a share link, so both answer points of one shape."""

from __future__ import annotations

from collections.abc import Sequence

from api.queries.common import Row
from api.schemas.reads import AggregatePoint, Series
from pipeline.catalog import METRICS


def series_by_type(metrics: Sequence[str], rows: Sequence[Row]) -> dict[str, Series]:
    """A series for each of ``metrics`` (catalogue names), in that order, empty where no row is of it."""
    series = {
        name: Series(unit=METRICS[name].canonical_unit, aggregation=METRICS[name].strategy.value, points=[])
        for name in metrics
    }
    for row in rows:
        series[row["metric"]].points.append(
            AggregatePoint(
                period_start=row["period_start"],
                hour_start_utc=row["hour_start_utc"],
                value=row["value"],
                sum=row["sum"],
                count=row["count"],
                min=row["min"],
                max=row["max"],
                flagged_count=row["flagged_count"],
                days_with_data=row["days"],
            )
        )
    return series
