"""The rules' input: one days x users frame per measure (``Panel``), every user and every day of the loaded window
present, NaN where a day has no usable value (no data, or data with flagged samples: left out, not counted as zero).
Days run down the rows, users across the columns, so a rolling window over the rows is every user's window at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipeline.catalog import RESTING_HR_METRIC, SLEEP_METRIC, SPO2_METRIC, STEPS_METRIC, WEIGHT_METRIC
from pipeline.insights.thresholds import DEFAULT_STEP_GOAL

# marts.daily metrics the rules read, and the panel field each one fills
DAILY_MEASURES = {
    STEPS_METRIC: "steps",
    RESTING_HR_METRIC: "resting_hr",
    SLEEP_METRIC: "sleep_minutes",
    SPO2_METRIC: "spo2_mean",
    WEIGHT_METRIC: "weight",
}
# Metrics whose flagged days still count. SpO2: the catalogue's only SpO2 flag is its soft minimum, 90 %, which is
# exactly what the low-SpO2 rule looks for; leaving those days out would hide every case the rule exists for.
FLAGGED_DAYS_COUNT = frozenset({SPO2_METRIC})
GLUCOSE_COUNTS = ("readings", "in_range", "below", "hours")


@dataclass(frozen=True)
class Panel:
    days: pd.DatetimeIndex
    users: pd.Index
    steps: pd.DataFrame
    resting_hr: pd.DataFrame
    sleep_minutes: pd.DataFrame
    sleep_midpoint: pd.DataFrame  # minutes after the previous local noon of the night's main sleep session
    spo2_mean: pd.DataFrame
    spo2_min: pd.DataFrame
    weight: pd.DataFrame
    glucose: dict[str, pd.DataFrame]  # GLUCOSE_COUNTS -> counts per day (0 without usable readings)
    device_days: dict[str, pd.DataFrame]  # device class -> whether it sent data that day (bool)
    step_goal: pd.Series  # per user


def _wide(
    long: pd.DataFrame, value: str, days: pd.DatetimeIndex, users: pd.Index, fill: float = np.nan
) -> pd.DataFrame:
    """``long`` (user_id, local_date, value) as a days x users frame over exactly ``days`` and ``users``."""
    if long.empty:
        return pd.DataFrame(fill, index=days, columns=users, dtype="float64")
    wide = long.pivot_table(index="local_date", columns="user_id", values=value, aggfunc="first", observed=True)
    return wide.reindex(index=days, columns=users, fill_value=fill).astype("float64")


@dataclass
class PanelInputs:
    """The loaded rows, long: what ``build_panel`` turns wide. Dates as datetime64 (midnight)."""

    first_day: pd.Timestamp
    last_day: pd.Timestamp
    users: list[str]
    daily: pd.DataFrame  # user_id, local_date, metric, value, min, flagged_count
    sleep_midpoints: pd.DataFrame = field(default_factory=pd.DataFrame)  # user_id, local_date, midpoint_minutes
    glucose: pd.DataFrame = field(default_factory=pd.DataFrame)  # user_id, local_date, readings, in_range, below, hours
    device_days: pd.DataFrame = field(default_factory=pd.DataFrame)  # user_id, local_date, device_class
    step_goals: pd.DataFrame = field(default_factory=pd.DataFrame)  # user_id, step_goal (NULL: default)


def _dated(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return frame
    return frame.assign(local_date=pd.to_datetime(frame["local_date"]), user_id=frame["user_id"].astype(str))


def build_panel(inputs: PanelInputs) -> Panel:
    days = pd.date_range(inputs.first_day, inputs.last_day, freq="D")
    users = pd.Index(sorted(inputs.users), name="user_id")
    daily = _dated(inputs.daily)
    measures: dict[str, pd.DataFrame] = {}
    spo2_min = pd.DataFrame(np.nan, index=days, columns=users)
    for metric, name in DAILY_MEASURES.items():
        rows = daily[daily["metric"] == metric] if not daily.empty else daily
        if metric not in FLAGGED_DAYS_COUNT and not rows.empty:
            rows = rows[rows["flagged_count"] == 0]
        measures[name] = _wide(rows, "value", days, users)
        if metric == SPO2_METRIC:
            spo2_min = _wide(rows, "min", days, users)
    glucose_rows = _dated(inputs.glucose)
    glucose = {name: _wide(glucose_rows, name, days, users, fill=0.0) for name in GLUCOSE_COUNTS}
    device_rows = _dated(inputs.device_days)
    device_days: dict[str, pd.DataFrame] = {}
    if not device_rows.empty:
        for device_class, rows in device_rows.assign(seen=1.0).groupby("device_class", observed=True):
            device_days[str(device_class)] = _wide(rows, "seen", days, users, fill=0.0) > 0
    goals = pd.Series(DEFAULT_STEP_GOAL, index=users, dtype="float64")
    if not inputs.step_goals.empty:
        own = inputs.step_goals.dropna(subset=["step_goal"])
        goals.update(pd.Series(own["step_goal"].astype("float64").to_numpy(), index=own["user_id"].astype(str)))
    return Panel(
        days=days,
        users=users,
        sleep_midpoint=_wide(_dated(inputs.sleep_midpoints), "midpoint_minutes", days, users),
        spo2_min=spo2_min,
        glucose=glucose,
        device_days=device_days,
        step_goal=goals,
        **measures,
    )
