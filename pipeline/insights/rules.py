"""The insight rules: each a function of the ``Panel`` (days x users frames) that returns what it finds on every day
for every user at once, as rows (``FINDING_COLUMNS``); no loop over users or days, only rolling windows down the
days. Thresholds and their sources: ``thresholds.py``; the rules in words: docs/insights.md.

A rule holds on a day when its condition is true over the window ending that day. ``evaluate`` keeps the findings of
the days asked for; the loaded window starts ``LOOKBACK_DAYS - 1`` days earlier so that every window is full.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import pandas as pd

from pipeline.insights import thresholds as t
from pipeline.insights.panel import Panel

FINDING_COLUMNS = (
    "user_id",
    "local_date",
    "rule",
    "subject",
    "severity",
    "direction",
    "message",
    "recommendation",
    "numbers",
)
INCREASING, DECREASING = "increasing", "decreasing"


def _r(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.round(t.COMPARE_DECIMALS)


def _text(values: pd.Series, decimals: int = 0) -> pd.Series:
    """Numbers as text for messages, vectorized (thousands separated for whole numbers)."""
    if decimals == 0:
        return values.round(0).astype("int64").map("{:,}".format)
    return values.round(decimals).astype(str)


def _findings(
    rule: str,
    panel: Panel,
    holds: pd.DataFrame,
    severity: pd.DataFrame | str,
    numbers: dict[str, pd.DataFrame | pd.Series],
    message: Callable[[pd.DataFrame], pd.Series],
    recommendation: Callable[[pd.DataFrame], pd.Series] | str,
    direction: pd.DataFrame | str | None = None,
    subject: str = "",
) -> pd.DataFrame:
    """The (day, user) cells where ``holds`` is true, as finding rows. ``numbers``: days x users frames (or a per-user
    Series) picked at those cells; they go into the row's ``numbers`` JSON and feed ``message``."""
    mask = holds.fillna(False).to_numpy(dtype=bool)
    day_at, user_at = np.nonzero(mask)
    picked = {}
    for name, values in numbers.items():
        array = values.to_numpy()
        picked[name] = array[user_at] if array.ndim == 1 else array[day_at, user_at]
    found = pd.DataFrame(picked)

    def cells(value: pd.DataFrame | str | None) -> object:
        if isinstance(value, pd.DataFrame):
            return value.to_numpy()[day_at, user_at]
        return value

    rows = pd.DataFrame(
        {
            "user_id": panel.users.to_numpy()[user_at],
            "local_date": panel.days.to_numpy()[day_at],
            "rule": rule,
            "subject": subject,
            "severity": cells(severity),
            "direction": cells(direction),
        }
    )
    rows["message"] = message(found).to_numpy() if len(found) else []
    rows["recommendation"] = (
        recommendation if isinstance(recommendation, str) else recommendation(found).to_numpy() if len(found) else []
    )
    rows["numbers"] = found.round(4).to_json(orient="records", lines=True).splitlines() if len(found) else []
    return rows[list(FINDING_COLUMNS)]


def _streak(days_at_goal: pd.DataFrame) -> pd.DataFrame:
    """Consecutive days at goal ending on each day (0 on a day below it), down every column at once."""
    total = days_at_goal.astype("int64").cumsum()
    at_last_miss = total.where(~days_at_goal).ffill().fillna(0)
    return (total - at_last_miss).astype("int64")


def step_goal_streak(p: Panel) -> pd.DataFrame:
    """Steps at or above the user's goal on each of the last ``STREAK_MIN_DAYS`` days or more (low; good news).
    A day without step data breaks the streak. The streak length counts back at most the loaded window."""
    at_goal = p.steps.ge(p.step_goal, axis=1) & p.steps.notna()
    streak = _streak(at_goal)
    return _findings(
        "step_goal_streak",
        p,
        streak >= t.STREAK_MIN_DAYS,
        "low",
        {"streak_days": streak, "goal": p.step_goal},
        lambda f: _text(f["streak_days"]) + " days in a row at or above your goal of " + _text(f["goal"]) + " steps.",
        "Keep it up; if the goal has become easy, consider raising it.",
    )


def step_goal_low_week(p: Panel) -> pd.DataFrame:
    """The last 7 days' mean steps under ``LOW_ATTAINMENT`` of the goal (medium, decreasing); needs
    ``MIN_DAYS_OF_7`` days with step data."""
    mean = p.steps.rolling(7, min_periods=t.MIN_DAYS_OF_7).mean()
    attainment = mean.div(p.step_goal, axis=1)
    return _findings(
        "step_goal_low_week",
        p,
        _r(attainment) < t.LOW_ATTAINMENT,
        "medium",
        {"mean_steps_7d": mean, "goal": p.step_goal, "attainment": attainment},
        lambda f: (
            "Your steps averaged "
            + _text(f["mean_steps_7d"])
            + " a day this week, "
            + _text(f["attainment"] * 100)
            + " % of your goal of "
            + _text(f["goal"])
            + "."
        ),
        "Short walks spread over the day add up; a lower goal you reach may help more than a high one you miss.",
        direction=DECREASING,
    )


def activity_trend(p: Panel) -> pd.DataFrame:
    """Mean steps of the last 7 days against the 28 days before them: +20 % or more (low, increasing), -20 % or
    less (medium, decreasing), -40 % or less (high, decreasing)."""
    recent = p.steps.rolling(t.TREND_DAYS, min_periods=t.MIN_DAYS_OF_7).mean()
    baseline = p.steps.rolling(t.TREND_BASELINE_DAYS, min_periods=t.MIN_DAYS_OF_28).mean().shift(t.TREND_DAYS)
    change = _r(recent / baseline.where(baseline > 0) - 1)
    up, down = change >= t.TREND_CHANGE, change <= -t.TREND_CHANGE
    severity = pd.DataFrame(np.where(change <= -t.TREND_DROP_HIGH, "high", np.where(down, "medium", "low")))
    direction = pd.DataFrame(np.where(up, INCREASING, DECREASING))
    return _findings(
        "activity_trend",
        p,
        up | down,
        severity,
        {"mean_steps_7d": recent, "mean_steps_28d_before": baseline, "change": change},
        lambda f: (
            "Your steps this week averaged "
            + _text(f["mean_steps_7d"])
            + " a day, "
            + _text(f["change"].abs() * 100)
            + np.where(f["change"] > 0, " % more", " % fewer")
            + " than the 4 weeks before ("
            + _text(f["mean_steps_28d_before"])
            + ")."
        ),
        lambda f: pd.Series(
            np.where(
                f["change"] > 0,
                "Nice progress; build on it gradually to avoid overuse injuries.",
                "If nothing stops you, try to get back to your usual routine; a daily walk is a good start.",
            )
        ),
        direction=direction,
    )


def resting_hr_rise(p: Panel) -> pd.DataFrame:
    """7-day mean resting heart rate at least 5 bpm (medium) or 10 bpm (high) above the user's 28-day baseline
    before those 7 days."""
    recent = p.resting_hr.rolling(t.RHR_DAYS, min_periods=t.MIN_DAYS_OF_7).mean()
    baseline = p.resting_hr.rolling(t.RHR_BASELINE_DAYS, min_periods=t.MIN_DAYS_OF_28).mean().shift(t.RHR_DAYS)
    rise = _r(recent - baseline)
    return _findings(
        "resting_hr_rise",
        p,
        rise >= t.RHR_RISE_MEDIUM,
        pd.DataFrame(np.where(rise >= t.RHR_RISE_HIGH, "high", "medium")),
        {"mean_bpm_7d": recent, "baseline_bpm_28d": baseline, "rise_bpm": rise},
        lambda f: (
            "Your resting heart rate averaged "
            + _text(f["mean_bpm_7d"], 1)
            + " bpm this week, "
            + _text(f["rise_bpm"], 1)
            + " bpm above your usual "
            + _text(f["baseline_bpm_28d"], 1)
            + "."
        ),
        "Illness, stress, alcohol, poor sleep or hard training can raise it: rest, and see a doctor if it stays up or "
        "you feel unwell.",
        direction=INCREASING,
    )


def sleep_deficit(p: Panel) -> pd.DataFrame:
    """Mean sleep of the last 7 nights (by wake-up day) under 7 h (medium) or 6 h (high)."""
    mean = p.sleep_minutes.rolling(t.SLEEP_DAYS, min_periods=t.MIN_DAYS_OF_7).mean()
    rounded = _r(mean)
    return _findings(
        "sleep_deficit",
        p,
        rounded < t.SLEEP_SHORT_MINUTES,
        pd.DataFrame(np.where(rounded < t.SLEEP_VERY_SHORT_MINUTES, "high", "medium")),
        {"mean_sleep_minutes_7d": mean},
        lambda f: (
            "You slept "
            + _text(f["mean_sleep_minutes_7d"].round(0) // 60)
            + " h "
            + _text(f["mean_sleep_minutes_7d"].round(0) % 60)
            + " min a night on average this week; adults need 7 h or more."
        ),
        "Keep a fixed wake-up time, and leave screens and caffeine out of the hours before bed.",
        direction=DECREASING,
    )


def sleep_irregularity(p: Panel) -> pd.DataFrame:
    """Standard deviation (n-1) of the nightly sleep midpoint over the last 7 nights above 60 minutes (medium)."""
    spread = p.sleep_midpoint.rolling(t.MIDPOINT_DAYS, min_periods=t.MIN_DAYS_OF_7).std()
    return _findings(
        "sleep_irregularity",
        p,
        _r(spread) > t.MIDPOINT_SD_MINUTES,
        "medium",
        {"midpoint_sd_minutes_7d": spread},
        lambda f: (
            "The middle of your sleep moved by "
            + _text(f["midpoint_sd_minutes_7d"])
            + " minutes (standard deviation) over the last week."
        ),
        "Going to bed and getting up at the same times every day, weekends included, steadies your body clock.",
    )


def low_spo2(p: Panel) -> pd.DataFrame:
    """The day's mean SpO2 under 95 % (medium), or a minimum under 90 % on at least 2 of the last 7 days (high)."""
    low_mean = _r(p.spo2_mean) < t.SPO2_LOW_MEAN
    hypoxaemic_days = (
        (_r(p.spo2_min) < t.SPO2_HYPOXAEMIA).astype("float64").rolling(t.SPO2_WINDOW_DAYS, min_periods=1).sum()
    )
    high = hypoxaemic_days >= t.SPO2_HYPOXAEMIA_DAYS
    return _findings(
        "low_spo2",
        p,
        low_mean | high,
        pd.DataFrame(np.where(high, "high", "medium")),
        {"mean_spo2": p.spo2_mean, "min_spo2": p.spo2_min, "days_under_90_of_7": hypoxaemic_days},
        lambda f: pd.Series(
            np.where(
                f["days_under_90_of_7"] >= t.SPO2_HYPOXAEMIA_DAYS,
                "Your blood oxygen dropped under 90 % on " + _text(f["days_under_90_of_7"]) + " of the last 7 days.",
                "Your blood oxygen averaged " + _text(f["mean_spo2"].fillna(0), 1) + " % today, under 95 %.",
            )
        ),
        "Check that the sensor fits well; if low readings repeat, or you are short of breath, see a doctor.",
        direction=DECREASING,
    )


def glucose_time_in_range(p: Panel) -> pd.DataFrame:
    """Over the last 14 days, with readings in at least 70 % of its hours: under 70 % of readings in 70-180 mg/dL
    (medium), under 50 % (high), or more than 4 % below 70 mg/dL (high)."""
    window = {name: counts.rolling(t.GLUCOSE_DAYS, min_periods=1).sum() for name, counts in p.glucose.items()}
    readings = window["readings"].where(window["readings"] > 0)
    in_range, below = window["in_range"] / readings, window["below"] / readings
    enough = window["hours"] >= t.GLUCOSE_MIN_HOURS
    tir, tbr = _r(in_range), _r(below)
    high = (tir < t.GLUCOSE_TIR_HIGH) | (tbr > t.GLUCOSE_TBR_HIGH)
    return _findings(
        "glucose_time_in_range",
        p,
        enough & ((tir < t.GLUCOSE_TIR_MEDIUM) | high),
        pd.DataFrame(np.where(high, "high", "medium")),
        {
            "time_in_range": in_range,
            "time_below_range": below,
            "readings_14d": window["readings"],
            "hours_with_readings_14d": window["hours"],
        },
        lambda f: (
            _text(f["time_in_range"] * 100)
            + " % of your glucose readings of the last 14 days were in 70-180 mg/dL (target: over 70 %), "
            + _text(f["time_below_range"] * 100, 1)
            + " % below 70 (target: under 4 %)."
        ),
        "Talk to your diabetes team about these numbers; they may adjust your treatment.",
    )


def weight_change(p: Panel) -> pd.DataFrame:
    """The latest weight at least 5 % above the lowest or below the highest of the last 30 days (medium, increasing
    or decreasing; the larger change when both)."""
    current = p.weight.ffill(limit=t.WEIGHT_DAYS - 1)
    weighings = p.weight.rolling(t.WEIGHT_DAYS, min_periods=1)
    lowest, highest = weighings.min(), weighings.max()
    rise, fall = _r(current / lowest - 1), _r(current / highest - 1)
    up, down = rise >= t.WEIGHT_CHANGE, fall <= -t.WEIGHT_CHANGE
    rising = up & (~down | (rise >= fall.abs()))
    change = rise.where(rising, fall)
    return _findings(
        "weight_change",
        p,
        up | down,
        "medium",
        {"weight_kg": current, "change": change, "from_kg": lowest.where(rising, highest)},
        lambda f: (
            "Your weight changed by "
            + _text(f["change"] * 100, 1)
            + " % within 30 days, from "
            + _text(f["from_kg"], 1)
            + " to "
            + _text(f["weight_kg"], 1)
            + " kg."
        ),
        "Unplanned weight change of this size is worth mentioning to a doctor.",
        direction=pd.DataFrame(np.where(rising, INCREASING, DECREASING)),
    )


def _gap_message(device_class: str, found: pd.DataFrame) -> pd.Series:
    return (
        "No data from your "
        + device_class.replace("_", " ")
        + " for "
        + _text(found["days_without_data"])
        + " days, after "
        + _text(found["active_days_of_7"])
        + " days with data in the week before."
    )


def data_gap(p: Panel) -> pd.DataFrame:
    """A device class with data on at least 4 of the 7 days before the last 2, and none on those 2 (low). One
    finding per device class (the insight's subject)."""
    found = []
    day_numbers = pd.DataFrame(np.repeat(np.arange(len(p.days))[:, None], len(p.users), axis=1), index=p.days)
    for device_class, seen in sorted(p.device_days.items()):  # a handful of classes, each over all users at once
        silent = seen.astype("float64").rolling(t.GAP_SILENT_DAYS, min_periods=t.GAP_SILENT_DAYS).sum() == 0
        before = seen.astype("float64").shift(t.GAP_SILENT_DAYS).rolling(t.GAP_HISTORY_DAYS).sum()
        last_seen = day_numbers.where(seen.to_numpy()).ffill()
        found.append(
            _findings(
                "data_gap",
                p,
                silent & (before >= t.GAP_MIN_ACTIVE_DAYS),
                "low",
                {
                    "days_without_data": pd.DataFrame(day_numbers.to_numpy() - last_seen.to_numpy()),
                    "active_days_of_7": before,
                },
                partial(_gap_message, device_class),
                "Check that the device is charged, worn and still connected to the app.",
                subject=device_class,
            )
        )
    return pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=list(FINDING_COLUMNS))


RULES: tuple[Callable[[Panel], pd.DataFrame], ...] = (
    step_goal_streak,
    step_goal_low_week,
    activity_trend,
    resting_hr_rise,
    sleep_deficit,
    sleep_irregularity,
    low_spo2,
    glucose_time_in_range,
    weight_change,
    data_gap,
)


def evaluate(panel: Panel, first_day: pd.Timestamp) -> pd.DataFrame:
    """Every rule's findings on the panel's days from ``first_day`` on (the days before only fill the windows)."""
    found = pd.concat([rule(panel) for rule in RULES], ignore_index=True)
    return found[found["local_date"] >= first_day].reset_index(drop=True)
