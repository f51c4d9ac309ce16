"""Which zone a sample's wall clock is in, and its local hour and day buckets (DESIGN §4)."""

from __future__ import annotations

import pandas as pd

from pipeline.timezones import to_local


def resolve_zones(samples: pd.DataFrame, users: pd.DataFrame, history: pd.DataFrame) -> pd.Series:
    """The sample's own zone when known; else the zone the user's history says they were in at the sample's start;
    else their home zone. ``users``: user_id, home_timezone; ``history``: user_id, valid_from, timezone."""
    frame = samples[["user_id", "start_utc"]].assign(_row=range(len(samples)))
    zone = samples["timezone"].astype("string").reset_index(drop=True)
    if not history.empty:
        left = frame.assign(user_id=frame["user_id"].astype(object)).sort_values("start_utc")
        right = history.sort_values("valid_from").rename(columns={"timezone": "history_zone"})
        right = right.assign(user_id=right["user_id"].astype(object))
        right["valid_from"] = pd.to_datetime(right["valid_from"], utc=True).astype(left["start_utc"].dtype)
        matched = pd.merge_asof(
            left, right, left_on="start_utc", right_on="valid_from", by="user_id", direction="backward"
        )
        by_row = matched.set_index("_row")["history_zone"].reindex(range(len(samples)))
        zone = zone.fillna(by_row.astype("string"))
    home = samples["user_id"].map(users.set_index("user_id")["home_timezone"]).astype("string").reset_index(drop=True)
    return zone.fillna(home).fillna("UTC").set_axis(samples.index)


def hour_buckets(instants_utc: pd.Series, zones: pd.Series) -> pd.DataFrame:
    """local_date, local_hour (naive) and hour_start_utc of each instant. On a fall-back night the repeated local
    hour gives two buckets with the same local_hour and different hour_start_utc."""
    local = to_local(instants_utc, zones)
    local_hour = local.dt.floor("h")
    hour_start_utc = instants_utc - (local - local_hour).astype("timedelta64[us]")
    return pd.DataFrame(
        {"local_date": local.dt.date, "local_hour": local_hour, "hour_start_utc": hour_start_utc},
        index=instants_utc.index,
    )
