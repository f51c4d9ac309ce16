"""Which zone a sample's wall clock is in, and its local hour and day buckets (DESIGN §4)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.timezones import to_local


def resolve_zones(samples: pd.DataFrame, users: pd.DataFrame, history: pd.DataFrame) -> pd.Series:
    """The sample's own zone when known; else the zone the user's history says they were in at the sample's start;
    else their home zone. ``users``: user_id, home_timezone; ``history``: user_id, valid_from, timezone.
    Returns a categorical (a handful of zones over millions of rows)."""
    zone = pd.Series(samples["timezone"].astype(object), index=samples.index)  # categorical: a cheap take
    missing = zone.isna().to_numpy()
    if not history.empty and missing.any():
        # only rows without their own zone, of users with a history, need the as-of lookup
        travellers = missing & samples["user_id"].isin(history["user_id"].unique()).to_numpy()
        left = samples.loc[travellers, ["user_id", "start_utc"]].reset_index(drop=True)
        left = left.assign(user_id=left["user_id"].astype(object), _row=travellers.nonzero()[0])
        left = left.sort_values("start_utc", kind="stable")
        right = history.sort_values("valid_from").rename(columns={"timezone": "history_zone"})
        right = right.assign(
            user_id=right["user_id"].astype(object),
            valid_from=pd.to_datetime(right["valid_from"], utc=True).astype(left["start_utc"].dtype),
        )
        matched = pd.merge_asof(
            left, right, left_on="start_utc", right_on="valid_from", by="user_id", direction="backward"
        )
        values = zone.to_numpy(copy=True)
        rows = matched["_row"].to_numpy()
        found = matched["history_zone"].notna().to_numpy()
        values[rows[found]] = matched["history_zone"].to_numpy(dtype=object)[found]
        zone = pd.Series(values, index=samples.index)
    if zone.isna().any():
        home = samples["user_id"].map(users.set_index("user_id")["home_timezone"])
        zone = zone.fillna(pd.Series(home.to_numpy(dtype=object), index=samples.index))
    return zone.fillna("UTC").astype("category")


def hour_buckets(instants_utc: pd.Series, zones: pd.Series) -> pd.DataFrame:
    """local_date, local_hour (naive) and hour_start_utc of each instant. On a fall-back night the repeated local
    hour gives two buckets with the same local_hour and different hour_start_utc."""
    local = to_local(instants_utc, zones)
    local_hour = local.dt.floor("h")
    hour_start_utc = instants_utc - (local - local_hour).astype("timedelta64[us]")
    return pd.DataFrame(
        {"local_date": _dates(local), "local_hour": local_hour, "hour_start_utc": hour_start_utc},
        index=instants_utc.index,
    )


def _dates(local: pd.Series) -> np.ndarray:
    """``datetime.date`` of each naive datetime, made once per distinct day (``.dt.date`` makes one per row)."""
    codes, days = pd.factorize(local.dt.normalize())
    dates = np.array([None, *(day.date() for day in days)], dtype=object)
    result: np.ndarray = dates[codes + 1]  # code -1 (NaT) -> None
    return result
