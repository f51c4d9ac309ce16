"""An independent, brute-force reading of the DESIGN §5.3 rule at minute resolution, for synthetic data whose samples
start and end on whole minutes: every minute a sample covers is given to the best-ranked sample covering it, which
contributes value / duration-in-minutes. Different algorithm, same rule: the production sweep must agree with it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.transform.local_time import hour_buckets


def minute_rule_daily(samples: pd.DataFrame) -> pd.Series:
    """Daily totals per (user_id, metric, local_date) for interval samples of cumulative metrics."""
    frame = samples[samples["end_utc"] > samples["start_utc"]].reset_index(drop=True)
    rank = frame.sort_values(["priority", "source_name", "start_utc", "identity"]).index
    frame["rank"] = pd.Series(np.arange(len(frame)), index=rank).reindex(frame.index)
    minutes = ((frame["end_utc"] - frame["start_utc"]) // pd.Timedelta(minutes=1)).to_numpy()
    rows = np.repeat(np.arange(len(frame)), minutes)
    offset = np.arange(rows.size) - np.repeat(np.cumsum(minutes) - minutes, minutes)
    exploded = pd.DataFrame(
        {
            "user_id": frame["user_id"].to_numpy()[rows],
            "metric": frame["metric"].to_numpy()[rows],
            "minute": frame["start_utc"].dt.tz_convert(None).to_numpy()[rows] + offset.astype("timedelta64[m]"),
            "rank": frame["rank"].to_numpy()[rows],
            "share": (frame["value"].to_numpy() / minutes)[rows],
            "zone": frame["zone"].to_numpy()[rows],
        }
    )
    best = exploded.groupby(["user_id", "metric", "minute"])["rank"].transform("min")
    won = exploded[exploded["rank"] == best].reset_index(drop=True)
    won["minute"] = pd.to_datetime(won["minute"], utc=True)
    won["local_date"] = hour_buckets(won["minute"], won["zone"])["local_date"]
    return won.groupby(["user_id", "metric", "local_date"])["share"].sum()
