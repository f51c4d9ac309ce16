"""From validated samples to deduplicated slices and hourly/daily buckets, for a set of user-days at once. Pure.

``samples`` columns: user_id, metric, value (canonical unit), stage, start_utc, end_utc, source_name, device_class,
identity, priority (0 = most trusted), zone, and optionally flags (the validation's soft-limit texts). It must hold
every sample that can touch the wanted user-days (the loader pads the window, further for body metrics: their outlier
test reads neighbouring readings); outputs are cut to ``days`` (user_id, local_date pairs) at the end, so a user-day's
rows are the same whether it is computed alone or with the rest of the user's history.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from pipeline.catalog import ASLEEP_STAGES, IN_BED_STAGE, SLEEP_METRIC
from pipeline.transform.aggregate import (
    cumulative_points,
    daily_from_hourly,
    discrete_points,
    hourly_from_points,
    sleep_daily,
)
from pipeline.transform.dedupe import (
    CUMULATIVE,
    DISCRETE,
    INTERVAL,
    SLEEP_SESSION_GAP,
    deduplicate_cumulative,
    deduplicate_discrete,
    deduplicate_sleep,
    drop_exact_duplicates,
    kind_of,
    night_numbers,
    sleep_sessions,
)
from pipeline.transform.keys import pairs_isin
from pipeline.transform.local_time import hour_buckets
from pipeline.transform.plausibility import append_reasons, flag_nights, outlier_reasons


@dataclass(frozen=True)
class Computed:
    slices: pd.DataFrame  # cumulative and sleep slices, winners and losers (won, flagged), with local_date
    readings: pd.DataFrame  # discrete readings with kept flag, matched_identity and flags (soft limits, outliers)
    sessions: pd.DataFrame  # sleep nights with wake_date and flagged_samples
    hourly: pd.DataFrame
    daily: pd.DataFrame
    source_totals: pd.DataFrame  # user_id, metric, local_date, source_name, device_class, raw, kept
    exact_duplicates: int
    duplicate_identities: pd.Series  # of the exact duplicates dropped (all of them, not cut to ``days``)


def _in_days(frame: pd.DataFrame, days: pd.DataFrame | None, date_column: str = "local_date") -> pd.DataFrame:
    if days is None or frame.empty:
        return frame
    return frame[pairs_isin(frame["user_id"], frame[date_column], days["user_id"], days["local_date"])]


def _concat(frames: list[pd.DataFrame | None]) -> pd.DataFrame:
    """The non-empty frames one after the other; when all are empty, the first one's columns with no rows (a user-day
    without cumulative samples or sleep still has slices with a ``won`` column, none of them)."""
    present = [f for f in frames if f is not None and not f.empty]
    if present:
        return pd.concat(present, ignore_index=True)
    shaped = [f for f in frames if f is not None]
    return shaped[0].iloc[0:0] if shaped else pd.DataFrame()


def _with_buckets(frame: pd.DataFrame, instant: str) -> pd.DataFrame:
    if len(frame):
        return pd.concat([frame, hour_buckets(frame[instant], frame["zone"])], axis=1)
    return frame.reindex(columns=[*frame.columns, "local_date", "local_hour", "hour_start_utc"])


def compute(samples: pd.DataFrame, days: pd.DataFrame | None = None, aggregate: bool = True) -> Computed:
    """Deduplicate and aggregate. ``days``: the (user_id, local_date) pairs to return; None = all. Without
    ``aggregate`` the hourly and daily frames are left empty (the database path aggregates in SQL)."""
    unique, duplicates = drop_exact_duplicates(samples)
    flags = unique["flags"] if "flags" in unique else pd.Series(None, index=unique.index, dtype=object)
    unique = unique.assign(flags=flags, flagged=flags.notna())
    kinds = kind_of(unique["metric"])

    cumulative = deduplicate_cumulative(unique[kinds == CUMULATIVE]).rows
    sleep = deduplicate_sleep(unique[kinds == INTERVAL]).rows
    slices = _with_buckets(_concat([cumulative, sleep]), "slice_start_utc")

    discrete = unique[kinds == DISCRETE].reset_index(drop=True)
    kept, matched = deduplicate_discrete(discrete)
    readings = discrete.assign(
        kept=discrete["identity"].isin(kept["identity"]),
        matched_identity=pd.Series(matched, dtype=object).reindex(discrete.index),
    )
    readings["flags"] = append_reasons(readings["flags"], outlier_reasons(readings))
    readings["flagged"] = readings["flags"].notna()
    readings = _with_buckets(readings, "start_utc")

    won = slices[slices["won"]] if len(slices) else slices
    won_cumulative = won[won["metric"] != SLEEP_METRIC] if len(won) else won
    stages = won[(won["metric"] == SLEEP_METRIC) & (won["stage"] != IN_BED_STAGE)] if len(won) else won
    if len(stages):  # a night over its limit flags all its samples (their winning slices)
        stages = stages.assign(flagged=flag_nights(stages, night_numbers(stages)))
        slices.loc[stages.index, "flagged"] = stages["flagged"]
    asleep = stages[stages["stage"].isin(list(ASLEEP_STAGES))] if len(stages) else stages
    hourly = (
        pd.DataFrame()
        if not aggregate
        else _concat(
            [
                hourly_from_points(cumulative_points(won_cumulative)) if len(won_cumulative) else None,
                hourly_from_points(discrete_points(readings[readings["kept"]])) if len(readings) else None,
                hourly_from_points(cumulative_points(asleep)) if len(asleep) else None,  # asleep minutes per hour
            ]
        )
    )
    wake_dates = (
        hour_buckets(stages["slice_end_utc"], stages["zone"])["local_date"] if len(stages) else pd.Series(dtype=object)
    )
    sessions = sleep_sessions(stages, wake_dates)
    not_sleep = hourly[hourly["metric"] != SLEEP_METRIC] if len(hourly) else hourly
    daily = (
        _concat([daily_from_hourly(not_sleep) if len(not_sleep) else None, sleep_daily(sessions)])
        if aggregate
        else pd.DataFrame()
    )

    return Computed(
        slices=_in_days(slices, days),
        readings=_in_days(readings, days),
        sessions=_in_days(sessions, days, "wake_date"),
        hourly=_in_days(hourly, days),
        daily=_in_days(daily, days),
        source_totals=_in_days(_source_totals(slices, readings), days),
        exact_duplicates=len(duplicates),
        duplicate_identities=duplicates,
    )


def _sleep_as_counted(slices: pd.DataFrame) -> pd.DataFrame:
    """Sleep slices as the day's sleep value counts them: asleep stages only (the catalogue's ``ASLEEP_STAGES``; time
    in bed and awake are not sleep), each on the wake-up day of its night (nights split at gaps over 2 h, as
    ``sleep_sessions`` does), in ``local_date``. Winners and losers alike, so each source's reported minutes land on
    the day its kept minutes count for. A source's generic "asleep" wrapper under its own detailed stages is one
    report of the same time, not two: each source counts each slice of time once (the winning stage first)."""
    layer = (
        slices[slices["stage"] != IN_BED_STAGE]
        .sort_values("won", ascending=False, kind="stable")
        .drop_duplicates(["user_id", "source_name", "device_class", "slice_start_utc", "slice_end_utc"])
        .sort_values(["user_id", "slice_start_utc"], kind="stable")
    )
    if layer.empty:
        return layer
    ends = layer.groupby("user_id")["slice_end_utc"].cummax()
    previous_end = ends.groupby(layer["user_id"]).shift()
    night = (previous_end.isna() | (layer["slice_start_utc"] - previous_end > SLEEP_SESSION_GAP)).cumsum()
    end_dates = pd.Series(hour_buckets(layer["slice_end_utc"], layer["zone"])["local_date"], index=layer.index)
    last = layer["slice_end_utc"].groupby(night).transform("max") == layer["slice_end_utc"]
    wake = end_dates[last].groupby(night[last]).last()
    counted = layer.assign(local_date=wake.reindex(night.to_numpy()).to_numpy())
    return counted[counted["stage"].isin(list(ASLEEP_STAGES))]


def _source_totals(slices: pd.DataFrame, readings: pd.DataFrame) -> pd.DataFrame:
    """Per user, metric, local day and source: what the source reported (raw) and what was kept after the rules.
    Sums for cumulative metrics, asleep minutes on the wake-up day for sleep (as the day's value counts them), counts
    of readings for discrete metrics."""
    keys = ["user_id", "metric", "local_date", "source_name", "device_class"]
    parts = []
    if not slices.empty:
        is_sleep = slices["metric"] == SLEEP_METRIC
        counted = _concat([slices[~is_sleep], _sleep_as_counted(slices[is_sleep])])
        frame = counted.assign(kept_value=counted["value"].where(counted["won"], 0.0))
        parts.append(frame.groupby(keys).agg(raw=("value", "sum"), kept=("kept_value", "sum")).reset_index())
    if not readings.empty:
        frame = readings.assign(one=1.0, kept_one=readings["kept"].astype(float))
        parts.append(frame.groupby(keys).agg(raw=("one", "sum"), kept=("kept_one", "sum")).reset_index())
    if not parts:
        return pd.DataFrame(columns=[*keys, "raw", "kept"])
    return pd.concat(parts, ignore_index=True)


def prepare_samples(
    validated: pd.DataFrame, users: pd.DataFrame, history: pd.DataFrame, orders: dict[str, list[str]] | None = None
) -> pd.DataFrame:
    """Validated rows (canonical values) plus each sample's zone and the user's priority of its source."""
    from pipeline.transform.dedupe import priorities
    from pipeline.transform.local_time import resolve_zones

    frame = validated.reset_index(drop=True)
    return frame.assign(
        zone=frame["zone"] if "zone" in frame else resolve_zones(frame, users, history),
        priority=priorities(frame["device_class"], frame["user_id"], orders),
    )
