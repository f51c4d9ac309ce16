"""Each rule on constructed daily series: it holds at its threshold and not just on the other side of it, with the
severity and direction the rule gives, and leaves flagged days and thin windows out (no database)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pipeline.insights import rules
from pipeline.insights.rules import FINDING_COLUMNS
from tests.insights.series import daily, on, panel, per_day

LAST = 34  # the 35th day: a full 7 + 28 day window


def one(found: pd.DataFrame, offset: int = LAST, user: str = "u1") -> dict[str, object]:
    rows = on(found, offset, user)
    assert len(rows) == 1, rows
    row = rows.iloc[0].to_dict()
    row["numbers"] = json.loads(str(row["numbers"]))
    return row


def none(found: pd.DataFrame, offset: int = LAST, user: str = "u1") -> bool:
    return on(found, offset, user).empty


# 1. step goal ----------------------------------------------------------------------------------------------------


def test_a_streak_is_seven_days_at_or_above_the_goal() -> None:
    seven = rules.step_goal_streak(panel(10, daily("STEPS", [5_000, 5_000, 5_000] + [10_000] * 7)))
    assert none(seven, 8)  # six days so far
    row = one(seven, 9)
    assert (row["severity"], row["direction"], row["numbers"]) == ("low", None, {"streak_days": 7, "goal": 10_000.0})
    one_short = rules.step_goal_streak(panel(10, daily("STEPS", [5_000] * 3 + [10_000] * 3 + [9_999] + [10_000] * 3)))
    assert none(one_short, 9)


def test_a_long_streak_is_counted_up_to_35_days_whatever_the_window_loaded() -> None:
    found = rules.step_goal_streak(panel(50, daily("STEPS", [10_000] * 50)))
    assert one(found, 33)["numbers"]["streak_days"] == 34
    assert [one(found, d)["numbers"]["streak_days"] for d in (34, 49)] == [35, 35]
    assert one(found, 49)["message"] == "35+ days in a row at or above your goal of 10,000 steps."


def test_a_users_own_goal_replaces_the_catalogues_and_a_missing_day_breaks_the_streak() -> None:
    goals = pd.DataFrame({"user_id": ["u1", "u2"], "step_goal": [8_000.0, None]})
    steps = [daily("STEPS", [8_000] * 7, user="u1"), daily("STEPS", [8_000] * 7, user="u2")]
    found = rules.step_goal_streak(panel(7, *steps, users=("u1", "u2"), step_goals=goals))
    assert one(found, 6, "u1")["numbers"] == {"streak_days": 7, "goal": 8_000.0}
    assert none(found, 6, "u2")  # 8,000 < the default 10,000
    gap = rules.step_goal_streak(panel(8, daily("STEPS", [10_000] * 3 + [None] + [10_000] * 4)))
    assert none(gap, 7)


def test_a_week_under_30_percent_of_the_goal() -> None:
    at = rules.step_goal_low_week(panel(7, daily("STEPS", [3_000] * 7)))
    assert none(at, 6)  # exactly 30 % is not under it
    row = one(rules.step_goal_low_week(panel(7, daily("STEPS", [3_000] * 6 + [2_999]))), 6)
    assert (row["severity"], row["direction"]) == ("medium", "decreasing")
    assert row["numbers"]["attainment"] == pytest.approx(20_999 / 7 / 10_000, abs=1e-3)
    # three days of data are not a week
    assert none(rules.step_goal_low_week(panel(7, daily("STEPS", [None] * 4 + [100] * 3))), 6)


# 2. activity trend -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recent", "expected"),
    [
        (12_000, ("low", "increasing")),
        (11_999, None),
        (8_001, None),
        (8_000, ("medium", "decreasing")),
        (6_001, ("medium", "decreasing")),
        (6_000, ("high", "decreasing")),
    ],
)
def test_activity_trend_against_the_28_days_before(recent: int, expected: tuple[str, str] | None) -> None:
    found = rules.activity_trend(panel(35, daily("STEPS", [10_000] * 28 + [recent] * 7)))
    if expected is None:
        assert none(found)
    else:
        row = one(found)
        assert (row["severity"], row["direction"]) == expected
        assert row["numbers"]["change"] == pytest.approx(recent / 10_000 - 1)


def test_flagged_days_are_left_out_not_counted_as_zero() -> None:
    # the last week: four days of 8,000 and three flagged days of 20,000 steps: -20 % on the unflagged days only
    steps = daily("STEPS", [10_000] * 28 + [8_000] * 4 + [20_000] * 3, flagged=[0] * 32 + [1] * 3)
    row = one(rules.activity_trend(panel(35, steps)))
    assert row["numbers"]["mean_steps_7d"] == 8_000.0
    assert row["severity"] == "medium"


# 3. resting heart rate ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recent", "severity"), [(64.9, None), (65.0, "medium"), (69.9, "medium"), (70.0, "high"), (58.0, None)]
)
def test_resting_heart_rate_rise_over_the_personal_baseline(recent: float, severity: str | None) -> None:
    found = rules.resting_hr_rise(panel(35, daily("RESTING_HEART_RATE", [60.0] * 28 + [recent] * 7)))
    if severity is None:
        assert none(found)
    else:
        row = one(found)
        assert (row["severity"], row["direction"]) == (severity, "increasing")
        assert row["numbers"] == {"mean_bpm_7d": recent, "baseline_bpm_28d": 60.0, "rise_bpm": round(recent - 60, 4)}


def test_a_thin_baseline_says_nothing() -> None:
    rhr = daily("RESTING_HEART_RATE", [60.0] * 14 + [None] * 14 + [75.0] * 7)  # 14 of 28 baseline days
    assert none(rules.resting_hr_rise(panel(35, rhr)))


# 4. sleep deficit --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("minutes", "severity"), [(420, None), (419, "medium"), (360, "medium"), (359, "high")])
def test_sleep_deficit_under_7_and_6_hours(minutes: float, severity: str | None) -> None:
    found = rules.sleep_deficit(panel(7, daily("SLEEP_ANALYSIS", [minutes] * 7)))
    if severity is None:
        assert none(found, 6)
    else:
        row = one(found, 6)
        assert (row["severity"], row["direction"]) == (severity, "decreasing")
        assert row["message"].startswith(f"You slept {minutes // 60} h {minutes % 60} min a night")


# 5. sleep irregularity ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("swing", "fires"), [(60.0, False), (61.0, True)])
def test_sleep_midpoint_spread_over_an_hour(swing: float, fires: bool) -> None:
    # 900 (03:00) +- swing on six nights and 900 once: mean 900, sample standard deviation exactly `swing`
    nights = [900 - swing, 900 + swing] * 3 + [900.0]
    found = rules.sleep_irregularity(panel(7, sleep_midpoints=per_day("midpoint_minutes", nights)))
    if not fires:
        assert none(found, 6)
    else:
        row = one(found, 6)
        assert (row["severity"], row["direction"]) == ("medium", None)
        assert row["numbers"]["midpoint_sd_minutes_7d"] == pytest.approx(swing)


# 6. SpO2 -----------------------------------------------------------------------------------------------------------


def test_low_spo2_mean_and_repeated_minimums_under_90() -> None:
    at = rules.low_spo2(panel(7, daily("OXYGEN_SATURATION", [97.0] * 6 + [95.0], minimum=[93.0] * 7)))
    assert none(at, 6)
    below = one(rules.low_spo2(panel(7, daily("OXYGEN_SATURATION", [97.0] * 6 + [94.9], minimum=[93.0] * 7))), 6)
    assert (below["severity"], below["direction"]) == ("medium", "decreasing")
    once = rules.low_spo2(panel(7, daily("OXYGEN_SATURATION", [97.0] * 7, minimum=[93.0] * 5 + [89.0, 90.0])))
    assert none(once, 6)  # one day under 90 and one at 90
    # two days under 90 in the week, flagged by the catalogue's soft minimum: still counted (they are the signal)
    twice = daily(
        "OXYGEN_SATURATION", [97.0] * 7, minimum=[89.9, 93, 93, 93, 93, 89.0, 93], flagged=[1, 0, 0, 0, 0, 1, 0]
    )
    row = one(rules.low_spo2(panel(7, twice)), 6)
    assert row["severity"] == "high" and row["numbers"]["days_under_90_of_7"] == 2
    # a week later the first of the two days is out of the window
    assert none(rules.low_spo2(panel(8, twice, daily("OXYGEN_SATURATION", [97.0], start=7))), 7)


# 7. glucose --------------------------------------------------------------------------------------------------------


def glucose(in_range: int, below: int, hours: float = 24, days: int = 14, readings: int = 96) -> pd.DataFrame:
    return per_day(
        "readings", [float(readings)] * days, in_range=float(in_range), below=float(below), hours=float(hours)
    )


@pytest.mark.parametrize(
    ("in_range", "severity"),
    [(68, None), (67, "medium"), (48, "medium"), (47, "high")],  # of 96 readings a day: 70.8, 69.8, 50.0, 49.0 %
)
def test_glucose_time_in_range(in_range: int, severity: str | None) -> None:
    found = rules.glucose_time_in_range(panel(14, glucose=glucose(in_range, below=0)))
    if severity is None:
        assert none(found, 13)
    else:
        row = one(found, 13)
        assert (row["severity"], row["direction"]) == (severity, None)
        assert row["numbers"]["time_in_range"] == pytest.approx(in_range / 96, abs=1e-3)
        assert row["numbers"]["readings_14d"] == 14 * 96


def test_glucose_time_below_range_over_4_percent_is_high() -> None:
    at = rules.glucose_time_in_range(panel(14, glucose=glucose(in_range=96 - 4, below=4, readings=100)))
    assert none(at, 13)  # 92 % in range, exactly 4 % below
    row = one(rules.glucose_time_in_range(panel(14, glucose=glucose(in_range=91, below=5, readings=100))), 13)
    assert row["severity"] == "high" and row["numbers"]["time_below_range"] == 0.05


def test_glucose_needs_readings_in_70_percent_of_the_hours() -> None:
    # 14 days x 24 h = 336 h; 70 % is 235.2 h: 235 h is too few, 236 enough
    few = per_day("readings", [96.0] * 13 + [96.0], in_range=0.0, below=0.0, hours=17.0)
    few.loc[13, "hours"] = 235 - 13 * 17  # 235 hours in all
    assert none(rules.glucose_time_in_range(panel(14, glucose=few)), 13)
    few.loc[13, "hours"] = 236 - 13 * 17
    assert one(rules.glucose_time_in_range(panel(14, glucose=few)), 13)["severity"] == "high"


# 8. weight ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("latest", "expected"),
    [(84.0, "increasing"), (83.9, None), (76.0, "decreasing"), (76.1, None)],
)
def test_weight_change_of_5_percent_within_30_days(latest: float, expected: str | None) -> None:
    weights = daily("WEIGHT", [80.0] + [None] * 28 + [latest])  # 29 days apart: both in the 30-day window
    found = rules.weight_change(panel(30, weights))
    if expected is None:
        assert none(found, 29)
    else:
        row = one(found, 29)
        assert (row["severity"], row["direction"]) == ("medium", expected)
        assert row["numbers"]["change"] == pytest.approx(latest / 80 - 1)


def test_weight_change_over_more_than_30_days_is_no_insight_and_holds_between_weighings() -> None:
    weights = daily("WEIGHT", [80.0] + [None] * 29 + [84.0])  # 30 days apart
    assert none(rules.weight_change(panel(31, weights)), 30)
    weights = daily("WEIGHT", [80.0, 84.0])  # no weighing after: the change holds until the 80 leaves the window
    found = rules.weight_change(panel(31, weights))
    assert one(found, 29)["direction"] == "increasing"
    assert none(found, 30)


# 9. data gap -------------------------------------------------------------------------------------------------------


def devices(pattern: str, device_class: str = "watch") -> pd.DataFrame:
    return per_day("device_class", [device_class if c == "x" else None for c in pattern])


@pytest.mark.parametrize(
    ("pattern", "active_before"),
    [("xxxxxxx..", 7), ("...xxxx..", 4), ("....xxx..", None), ("xxxxxxx.x", None), ("xxxxxxxx.", None)],
)
def test_data_gap_after_a_regular_week(pattern: str, active_before: int | None) -> None:
    found = rules.data_gap(panel(len(pattern), device_days=devices(pattern)))
    if active_before is None:
        assert none(found, len(pattern) - 1)
    else:
        row = one(found, len(pattern) - 1)
        assert (row["subject"], row["severity"], row["direction"]) == ("watch", "low", None)
        assert row["numbers"] == {"days_without_data": 2.0, "active_days_of_7": float(active_before)}


def test_each_device_class_has_its_own_gap() -> None:
    seen = pd.concat([devices("xxxxxxx..", "watch"), devices("xxxxxxxxx", "phone"), devices("xxxxxxx..", "manual")])
    found = on(rules.data_gap(panel(9, device_days=seen)), 8)
    assert sorted(found["subject"]) == ["manual", "watch"]


def test_rules_return_the_finding_columns_for_every_user_at_once() -> None:
    users = [f"u{i}" for i in range(50)]
    sleep = pd.concat([daily("SLEEP_ANALYSIS", [300 + i] * 7, user=u) for i, u in enumerate(users)])
    found = rules.sleep_deficit(panel(7, sleep, users=users))
    last = found[found["local_date"] == found["local_date"].max()]
    assert list(found.columns) == list(FINDING_COLUMNS)
    assert sorted(last["user_id"]) == sorted(users)  # 300..349 min: all under 6 h
    assert set(last["severity"]) == {"high"}
    assert last.set_index("user_id").loc["u49", "message"].startswith("You slept 5 h 49 min")
