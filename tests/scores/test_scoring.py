"""The health score's formula on hand-built cohorts: exact values, re-weighting of a missing component, no score for
too little data, and winsorizing against one extreme user."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipeline.scores.scoring import score_days

DAY = dt.date(2024, 3, 1)

# (user, input, value) of one day; bounds (p5, p95) given by hand
COHORT = [
    ("a", "steps", 10_000), ("b", "steps", 6_000), ("c", "steps", 2_000), ("d", "steps", 8_000),
    ("a", "active_energy", 500), ("b", "active_energy", 900), ("c", "active_energy", 100), ("d", "active_energy", 300),
    ("a", "sleep_duration", 480), ("b", "sleep_duration", 390),
    ("c", "sleep_duration", 300), ("d", "sleep_duration", 570),
    ("a", "sleep_regularity", 10), ("b", "sleep_regularity", 40), ("c", "sleep_regularity", 130),
    ("a", "resting_hr", 55), ("b", "resting_hr", 65), ("c", "resting_hr", 85),
    ("a", "spo2", 98), ("b", "spo2", 96), ("c", "spo2", 93),
    # e: half of activity and half of vitals (completeness 0.35); f: activity only (one component)
    ("e", "steps", 6_000), ("e", "spo2", 96),
    ("f", "steps", 6_000), ("f", "active_energy", 500),
]  # fmt: skip
BOUNDS = {
    "steps": (3_000, 9_000),
    "active_energy": (100, 900),
    "sleep_duration": (360, 600),
    "sleep_regularity": (0, 120),
    "resting_hr": (50, 80),
    "spo2": (94, 99),
}


def values(rows: list[tuple[str, str, float]], day: dt.date = DAY) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["user_id", "input", "value"]).assign(local_date=day)
    return frame.astype({"value": "float64"})


def bounds(by_input: dict[str, tuple[float, float]], day: dt.date = DAY) -> pd.DataFrame:
    return pd.DataFrame(
        [(day, name, low, high) for name, (low, high) in by_input.items()], columns=["local_date", "input", "p5", "p95"]
    )


def by_user(scores: pd.DataFrame) -> dict[str, dict[str, float]]:
    return {str(row.pop("user_id")): row for row in scores.drop(columns="local_date").to_dict("records")}


def test_a_small_cohort_scores_as_computed_by_hand() -> None:
    scores = by_user(score_days(values(COHORT), bounds(BOUNDS)))
    # steps winsorized to 9000, 6000, 3000, 8000 -> (v - 3000) / 6000: 1, 0.5, 0, 5/6 (e and f: 0.5)
    # energy 500, 900, 100, 300 -> (v - 100) / 800: 0.5, 1, 0, 0.25 -> activity = mean of the two x 100
    # sleep duration 480, 390, 300 -> 360, 570: minutes outside 420-540: 0, 30, 60, 30 -> 1 - v / 60: 1, .5, 0, .5
    # regularity 10, 40, 130 -> 120: (120 - v) / 110: 1, 80/110, 0; sleep = 0.6 duration + 0.4 regularity
    # resting HR 55, 65, 85 -> 80: (80 - v) / 25: 1, 0.6, 0; SpO2 98, 96, 93 -> 94: (v - 94) / 4: 1, 0.5, 0
    expected = {
        "a": {"activity": 75.0, "sleep": 100.0, "vitals": 100.0, "score": 90.0, "completeness": 1.0},
        "b": {
            "activity": 75.0,
            "sleep": 100 * (0.6 * 0.5 + 0.4 * 80 / 110),
            "vitals": 55.0,
            "score": 0.4 * 75 + 0.3 * 100 * (0.6 * 0.5 + 0.4 * 80 / 110) + 0.3 * 55,
            "completeness": 1.0,
        },
        "c": {"activity": 0.0, "sleep": 0.0, "vitals": 0.0, "score": 0.0, "completeness": 1.0},
        # no vitals: activity and sleep re-weighted 0.4 : 0.3; sleep from duration alone
        "d": {
            "activity": 100 * (5 / 6 + 0.25) / 2,
            "sleep": 50.0,
            "vitals": np.nan,
            "score": (0.4 * 100 * (5 / 6 + 0.25) / 2 + 0.3 * 50) / 0.7,
            "completeness": 0.4 * 1.0 + 0.3 * 0.6,
        },
    }
    assert set(scores) == {"a", "b", "c", "d"}  # e (completeness 0.35) and f (one component): no row
    for user, columns in expected.items():
        for name, value in columns.items():
            assert scores[user][name] == pytest.approx(value, nan_ok=True), (user, name)
        assert scores[user]["cohort_users"] == 4


def test_a_missing_component_reweights_and_lowers_completeness() -> None:
    full = by_user(score_days(values(COHORT), bounds(BOUNDS)))
    without_vitals = [row for row in COHORT if not (row[0] == "b" and row[1] in {"resting_hr", "spo2"})]
    # resting HR of a and c alone: two users, under the cohort minimum of 3: nobody's resting HR counts
    partial = by_user(score_days(values(without_vitals), bounds(BOUNDS)))
    assert np.isnan(partial["b"]["vitals"]) and partial["b"]["completeness"] == pytest.approx(0.7)
    assert partial["b"]["score"] == pytest.approx((0.4 * full["b"]["activity"] + 0.3 * full["b"]["sleep"]) / 0.7)
    # a's vitals: SpO2 alone (98 -> (98 - 94) / 4 = 1), its completeness loses resting HR's 0.3 x 0.5
    assert partial["a"]["vitals"] == pytest.approx(100.0) and partial["a"]["completeness"] == pytest.approx(0.85)


def test_too_little_data_gives_no_row() -> None:
    only_activity = [row for row in COHORT if row[1] in {"steps", "active_energy"}]
    assert score_days(values(only_activity), bounds(BOUNDS)).empty
    two_users = [row for row in COHORT if row[0] in {"a", "b"}]  # under the cohort minimum for every input
    assert score_days(values(two_users), bounds(BOUNDS)).empty


def extreme_cohort() -> tuple[pd.DataFrame, pd.DataFrame]:
    """19 ordinary users (4,000-13,000 steps) and one with 100,000; equal energy, sleep, resting HR, SpO2."""
    users = [f"u{i:02d}" for i in range(20)]
    steps = [4_000.0 + 500 * i for i in range(19)] + [100_000.0]
    rows = [(u, "steps", s) for u, s in zip(users, steps, strict=True)]
    rows += [(u, name, v) for u in users for name, v in [("active_energy", 500.0), ("sleep_duration", 480.0)]]
    rows += [(u, name, v) for u in users for name, v in [("resting_hr", 60.0), ("spo2", 97.0)]]
    frame = values(rows)
    # the cohort percentiles as marts.cohort_daily computes them (percentile_cont: linear interpolation)
    cohort = frame.groupby(["local_date", "input"])["value"].quantile([0.05, 0.95]).unstack()
    return frame, cohort.set_axis(["p5", "p95"], axis=1).reset_index()


def test_winsorizing_keeps_one_extreme_user_from_compressing_the_others() -> None:
    frame, cohort = extreme_cohort()
    steps = cohort.set_index("input").loc["steps"]
    assert (steps["p5"], steps["p95"]) == pytest.approx((4_475.0, 17_350.0))
    kept = by_user(score_days(frame, cohort))
    # the best ordinary user: (13,000 - 4,475) / (17,350 - 4,475) of steps, energy 0.5 (all equal)
    assert kept["u18"]["activity"] == pytest.approx(100 * (8_525 / 12_875 + 0.5) / 2)
    assert kept["u00"]["activity"] == pytest.approx(25.0) and kept["u19"]["activity"] == pytest.approx(75.0)
    # without winsorizing, 100,000 steps set the maximum: the best ordinary user gets 9,000 / 96,000 of the range
    raw = by_user(score_days(frame, cohort, winsorize=False))
    assert raw["u18"]["activity"] == pytest.approx(100 * (9_000 / 96_000 + 0.5) / 2)
    ordinary = [f"u{i:02d}" for i in range(19)]
    spread_kept = max(kept[u]["score"] for u in ordinary) - min(kept[u]["score"] for u in ordinary)
    spread_raw = max(raw[u]["score"] for u in ordinary) - min(raw[u]["score"] for u in ordinary)
    assert spread_kept > 6 * spread_raw


def test_days_are_scored_against_their_own_cohort_at_once() -> None:
    other = DAY + dt.timedelta(days=1)
    both = pd.concat([values(COHORT), values([(u, i, v * 2) for u, i, v in COHORT], other)])
    scores = score_days(
        both, pd.concat([bounds(BOUNDS), bounds({k: (2 * a, 2 * b) for k, (a, b) in BOUNDS.items()}, other)])
    )
    # doubling every value and bound leaves min-max positions alone except the sleep band, which is absolute
    first, second = scores[scores["local_date"] == DAY], scores[scores["local_date"] == other]
    assert first["activity"].tolist() == pytest.approx(second["activity"].tolist())
    assert first["vitals"].tolist() == pytest.approx(second["vitals"].tolist(), nan_ok=True)
    assert len(first) == 4


def test_bounds_missing_for_a_day_fall_back_to_its_own_percentiles() -> None:
    frame, cohort = extreme_cohort()
    assert score_days(frame, cohort.iloc[0:0]).equals(score_days(frame, cohort))
