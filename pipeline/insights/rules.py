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
from pipeline.insights import windows as w
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


def _r(values: np.ndarray) -> np.ndarray:
    return np.round(values, t.COMPARE_DECIMALS)


def _text(values: pd.Series, decimals: int = 0) -> pd.Series:
    """Numbers as text for messages (thousands separated for whole numbers)."""
    if decimals == 0:
        return values.round(0).astype("int64").map("{:,}".format)
    return values.round(decimals).astype(str)


Cells = np.ndarray | pd.DataFrame | pd.Series


def _array(values: Cells) -> np.ndarray:
    return values.to_numpy() if isinstance(values, pd.DataFrame | pd.Series) else values


def _findings(
    rule: str,
    panel: Panel,
    holds: Cells,
    severity: Cells | str,
    numbers: dict[str, Cells],
    message: Callable[[pd.DataFrame], pd.Series],
    recommendation: Callable[[pd.DataFrame], pd.Series] | str,
    direction: Cells | str | None = None,
    subject: str = "",
) -> pd.DataFrame:
    """The (day, user) cells where ``holds`` is true, as finding rows. ``numbers``: days x users arrays (or one
    value per user) picked at those cells; they go into the row's ``numbers`` JSON and feed ``message``."""
    day_at, user_at = np.nonzero(_array(holds))
    picked = {}
    for name, values in numbers.items():
        array = _array(values)
        picked[name] = array[user_at] if array.ndim == 1 else array[day_at, user_at]
    found = pd.DataFrame(picked)

    def cells(value: Cells | str | None) -> object:
        return value if value is None or isinstance(value, str) else _array(value)[day_at, user_at]

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
    if found.empty:
        return rows.assign(message=None, recommendation=None, numbers=None)[list(FINDING_COLUMNS)].iloc[:0]
    rows["message"] = message(found).to_numpy()
    rows["recommendation"] = recommendation if isinstance(recommendation, str) else recommendation(found).to_numpy()
    rows["numbers"] = found.round(4).to_json(orient="records", lines=True).splitlines()
    return rows[list(FINDING_COLUMNS)]


def step_goal_streak(p: Panel) -> pd.DataFrame:
    """Steps at or above the user's goal on each of the last ``STREAK_MIN_DAYS`` days or more (low; good news).
    A day without step data breaks the streak. The streak is counted up to ``LOOKBACK_DAYS`` ("35+ days"), so a day
    evaluated alone and within a range gives the same row; the insight's first day tells how long it has lasted."""
    goal = p.step_goal.to_numpy()
    steps = p.steps.to_numpy()
    with np.errstate(invalid="ignore"):
        streak = np.minimum(w.run_length(steps >= goal), t.LOOKBACK_DAYS)  # NaN compares false: no data breaks it
    return _findings(
        "step_goal_streak",
        p,
        streak >= t.STREAK_MIN_DAYS,
        "low",
        {"streak_days": streak, "goal": goal},
        lambda f: (
            _text(f["streak_days"])
            + np.where(f["streak_days"] >= t.LOOKBACK_DAYS, "+", "")
            + " days in a row at or above your goal of "
            + _text(f["goal"])
            + " steps."
        ),
        "Keep it up; if the goal has become easy, consider raising it.",
    )


def step_goal_low_week(p: Panel) -> pd.DataFrame:
    """The last 7 days' mean steps under ``LOW_ATTAINMENT`` of the goal (medium, decreasing); needs
    ``MIN_DAYS_OF_7`` days with step data."""
    goal = p.step_goal.to_numpy()
    mean = w.mean(p.steps.to_numpy(), 7, t.MIN_DAYS_OF_7)
    attainment = mean / goal
    return _findings(
        "step_goal_low_week",
        p,
        _r(attainment) < t.LOW_ATTAINMENT,
        "medium",
        {"mean_steps_7d": mean, "goal": goal, "attainment": attainment},
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


def _recent_and_baseline(values: np.ndarray, recent_days: int, baseline_days: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the last ``recent_days`` and of the ``baseline_days`` before them (each with enough days)."""
    recent = w.mean(values, recent_days, t.MIN_DAYS_OF_7)
    baseline = w.shift(w.mean(values, baseline_days, t.MIN_DAYS_OF_28), recent_days)
    return recent, baseline


def activity_trend(p: Panel) -> pd.DataFrame:
    """Mean steps of the last 7 days against the 28 days before them: +20 % or more (low, increasing), -20 % or
    less (medium, decreasing), -40 % or less (high, decreasing)."""
    recent, baseline = _recent_and_baseline(p.steps.to_numpy(), t.TREND_DAYS, t.TREND_BASELINE_DAYS)
    with np.errstate(invalid="ignore", divide="ignore"):
        change = _r(recent / np.where(baseline > 0, baseline, np.nan) - 1)
        up, down = change >= t.TREND_CHANGE, change <= -t.TREND_CHANGE
        severity = np.where(change <= -t.TREND_DROP_HIGH, "high", np.where(down, "medium", "low"))
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
        direction=np.where(up, INCREASING, DECREASING),
    )


def resting_hr_rise(p: Panel) -> pd.DataFrame:
    """7-day mean resting heart rate at least 5 bpm (medium) or 10 bpm (high) above the user's 28-day baseline
    before those 7 days."""
    recent, baseline = _recent_and_baseline(p.resting_hr.to_numpy(), t.RHR_DAYS, t.RHR_BASELINE_DAYS)
    rise = _r(recent - baseline)
    with np.errstate(invalid="ignore"):
        holds, high = rise >= t.RHR_RISE_MEDIUM, rise >= t.RHR_RISE_HIGH
    return _findings(
        "resting_hr_rise",
        p,
        holds,
        np.where(high, "high", "medium"),
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
    mean = w.mean(p.sleep_minutes.to_numpy(), t.SLEEP_DAYS, t.MIN_DAYS_OF_7)
    rounded = _r(mean)
    with np.errstate(invalid="ignore"):
        holds, high = rounded < t.SLEEP_SHORT_MINUTES, rounded < t.SLEEP_VERY_SHORT_MINUTES
    return _findings(
        "sleep_deficit",
        p,
        holds,
        np.where(high, "high", "medium"),
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
    spread = w.std(p.sleep_midpoint.to_numpy(), t.MIDPOINT_DAYS, t.MIN_DAYS_OF_7)
    with np.errstate(invalid="ignore"):
        holds = _r(spread) > t.MIDPOINT_SD_MINUTES
    return _findings(
        "sleep_irregularity",
        p,
        holds,
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
    mean, lowest = p.spo2_mean.to_numpy(), p.spo2_min.to_numpy()
    with np.errstate(invalid="ignore"):
        low_mean = _r(mean) < t.SPO2_LOW_MEAN
        hypoxaemic_days = w.total((_r(lowest) < t.SPO2_HYPOXAEMIA).astype("float64"), t.SPO2_WINDOW_DAYS)
    high = hypoxaemic_days >= t.SPO2_HYPOXAEMIA_DAYS
    return _findings(
        "low_spo2",
        p,
        low_mean | high,
        np.where(high, "high", "medium"),
        {"mean_spo2": mean, "min_spo2": lowest, "days_under_90_of_7": hypoxaemic_days},
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
    window = {name: w.total(counts.to_numpy(), t.GLUCOSE_DAYS) for name, counts in p.glucose.items()}
    readings = np.where(window["readings"] > 0, window["readings"], np.nan)
    in_range, below = window["in_range"] / readings, window["below"] / readings
    enough = window["hours"] >= t.GLUCOSE_MIN_HOURS
    tir, tbr = _r(in_range), _r(below)
    with np.errstate(invalid="ignore"):
        high = (tir < t.GLUCOSE_TIR_HIGH) | (tbr > t.GLUCOSE_TBR_HIGH)
        holds = enough & ((tir < t.GLUCOSE_TIR_MEDIUM) | high)
    return _findings(
        "glucose_time_in_range",
        p,
        holds,
        np.where(high, "high", "medium"),
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
    weights = p.weight.to_numpy()
    current = w.forward_fill(weights, t.WEIGHT_DAYS - 1)
    lowest, highest = w.minimum(weights, t.WEIGHT_DAYS), w.maximum(weights, t.WEIGHT_DAYS)
    rise, fall = _r(current / lowest - 1), _r(current / highest - 1)
    with np.errstate(invalid="ignore"):
        up, down = rise >= t.WEIGHT_CHANGE, fall <= -t.WEIGHT_CHANGE
        rising = up & (~down | (rise >= np.abs(fall)))
    return _findings(
        "weight_change",
        p,
        up | down,
        "medium",
        {"weight_kg": current, "change": np.where(rising, rise, fall), "from_kg": np.where(rising, lowest, highest)},
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
        direction=np.where(rising, INCREASING, DECREASING),
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
    rows = np.arange(len(p.days))[:, None]
    for device_class, seen_frame in sorted(p.device_days.items()):  # a handful of classes, each for all users
        seen = seen_frame.to_numpy(dtype=bool)
        days = seen.astype("float64")
        silent = (w.total(days, t.GAP_SILENT_DAYS) == 0) & (rows >= t.GAP_SILENT_DAYS - 1)
        before = w.shift(w.total(days, t.GAP_HISTORY_DAYS), t.GAP_SILENT_DAYS)
        last_seen = w.last_present_row(seen)
        with np.errstate(invalid="ignore"):
            holds = silent & (before >= t.GAP_MIN_ACTIVE_DAYS)
        found.append(
            _findings(
                "data_gap",
                p,
                holds,
                "low",
                {"days_without_data": np.where(last_seen >= 0, rows - last_seen, np.nan), "active_days_of_7": before},
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
