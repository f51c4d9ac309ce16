"""Hourly and daily buckets per user, metric and local period (DESIGN §6).

Every bucket holds value plus sum, count, min, max and the latest value and time, so that coarser periods derive
exactly from finer ones (an average is sum / count, never an average of averages). Daily rows of cumulative and
discrete metrics are rolled up from the hourly ones; sleep's daily value follows the wake-up-day rule instead.

Flagged samples (soft limits, outlier tests: DESIGN §5) stay in every bucket; ``flagged_count`` says how many of the
bucket's samples carry a flag, and the latest value and time are those of the latest unflagged sample when the bucket
has one (so a LATEST metric's value keeps a flagged weight out), else of the latest sample. The SQL models
(``samples/sql/hourly.sql``, ``daily.sql``) follow the same rules.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.catalog import METRICS, SLEEP_METRIC, Strategy
from pipeline.transform.local_time import hour_buckets

HOURLY_COLUMNS = [
    "user_id",
    "metric",
    "local_date",
    "local_hour",
    "hour_start_utc",
    "value",
    "sum",
    "count",
    "min",
    "max",
    "latest_value",
    "latest_at",
    "flagged_count",
]
DAILY_COLUMNS = [
    "user_id",
    "metric",
    "local_date",
    "value",
    "sum",
    "count",
    "min",
    "max",
    "latest_value",
    "latest_at",
    "flagged_count",
]


def _finish(frame: pd.DataFrame) -> pd.DataFrame:
    strategy = frame["metric"].map({m.name: m.strategy for m in METRICS.values()})
    frame["value"] = np.select(
        [strategy == Strategy.SUM, strategy == Strategy.AVERAGE],
        [frame["sum"], frame["sum"] / frame["count"]],
        default=frame["latest_value"],
    )
    return frame


def _bucket(points: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """points: keys + amount, counted, flagged, at (instant for 'latest'), tiebreak. Flagged points sort first, so
    the last point is the latest unflagged one when there is one."""
    points = points.assign(unflagged=~points["flagged"], counted_flagged=points["counted"] * points["flagged"])
    ordered = points.sort_values([*keys, "unflagged", "at", "tiebreak"], kind="stable")
    grouped = ordered.groupby(keys, sort=True, dropna=False)
    out = grouped.agg(
        sum=("amount", "sum"),
        count=("counted", "sum"),
        min=("amount", "min"),
        max=("amount", "max"),
        latest_value=("amount", "last"),
        latest_at=("at", "last"),
        flagged_count=("counted_flagged", "sum"),
    )
    return out.reset_index()


def hourly_from_points(points: pd.DataFrame) -> pd.DataFrame:
    """``points``: user_id, metric, bucket_instant (UTC), zone, at (for 'latest'), amount, tiebreak (the sample),
    flagged. `count` counts samples: the slices of one sample within a bucket count once; so does flagged_count."""
    if points.empty:
        return pd.DataFrame(columns=HOURLY_COLUMNS)
    keys = ["user_id", "metric", "local_date", "local_hour", "hour_start_utc"]
    buckets = hour_buckets(points["bucket_instant"], points["zone"])
    frame = pd.concat([points.drop(columns=["bucket_instant"]), buckets], axis=1)
    frame["counted"] = (~frame.duplicated(subset=[*keys, "tiebreak"])).astype(int)
    hourly = _bucket(frame, keys)
    return _finish(hourly)[HOURLY_COLUMNS]


def daily_from_hourly(hourly: pd.DataFrame) -> pd.DataFrame:
    """Exact roll-up: sums and counts add, min of mins, max of maxes, the latest of the latest."""
    if hourly.empty:
        return pd.DataFrame(columns=DAILY_COLUMNS)
    # hours whose latest is unflagged (they hold an unflagged sample) sort last: the day's latest is theirs if any
    hourly = hourly.assign(unflagged=hourly["flagged_count"] < hourly["count"])
    ordered = hourly.sort_values(["user_id", "metric", "local_date", "unflagged", "latest_at"], kind="stable")
    grouped = ordered.groupby(["user_id", "metric", "local_date"], sort=True)
    daily = grouped.agg(
        sum=("sum", "sum"),
        count=("count", "sum"),
        min=("min", "min"),
        max=("max", "max"),
        latest_value=("latest_value", "last"),
        latest_at=("latest_at", "last"),
        flagged_count=("flagged_count", "sum"),
    ).reset_index()
    return _finish(daily)[DAILY_COLUMNS]


def cumulative_points(won_slices: pd.DataFrame) -> pd.DataFrame:
    """Winning slices as bucket points; each lies inside one local hour (slices are cut at quarter-hours)."""
    return pd.DataFrame(
        {
            "user_id": won_slices["user_id"],
            "metric": won_slices["metric"],
            "bucket_instant": won_slices["slice_start_utc"],
            "zone": won_slices["zone"],
            "at": won_slices["slice_end_utc"],
            "amount": won_slices["value"],
            "tiebreak": won_slices["identity"],
            "flagged": won_slices.get("flagged", False),
        }
    )


def discrete_points(readings: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": readings["user_id"],
            "metric": readings["metric"],
            "bucket_instant": readings["start_utc"],
            "zone": readings["zone"],
            "at": readings["start_utc"],
            "amount": readings["value"],
            "tiebreak": readings["identity"],
            "flagged": readings["flags"].notna() if "flags" in readings else False,
        }
    )


def sleep_daily(sessions: pd.DataFrame) -> pd.DataFrame:
    """SLEEP_ANALYSIS per wake-up day: asleep minutes of the nights that end on it; flagged_count adds up the nights'
    flagged samples, and the latest night is the latest without any when there is one."""
    if sessions.empty:
        return pd.DataFrame(columns=DAILY_COLUMNS)
    sessions = sessions.assign(unflagged=sessions["flagged_samples"] == 0)
    ordered = sessions.sort_values(["user_id", "wake_date", "unflagged", "session_end_utc"])
    grouped = ordered.groupby(["user_id", "wake_date"], sort=True)
    daily = grouped.agg(
        sum=("asleep_minutes", "sum"),
        count=("asleep_minutes", "size"),
        min=("asleep_minutes", "min"),
        max=("asleep_minutes", "max"),
        latest_value=("asleep_minutes", "last"),
        latest_at=("session_end_utc", "last"),
        flagged_count=("flagged_samples", "sum"),
    ).reset_index()
    daily = daily.rename(columns={"wake_date": "local_date"}).assign(metric=SLEEP_METRIC)
    return _finish(daily)[DAILY_COLUMNS]
