"""Discrete readings of two sources are one measurement only when their times agree within the metric's time
tolerance *and* their values within its value tolerance (DESIGN §5.4); hand-computed cases on both sides of both."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.catalog import GLUCOSE_MG_DL_PER_MMOL_L
from pipeline.transform.compute import compute
from tests.transform.test_dedupe_cases import samples

LB = 0.45359237  # kg


def kept_values(rows: list[tuple]) -> list[float]:
    readings = compute(samples(rows)).readings
    return sorted(round(float(v), 4) for v in readings.loc[readings["kept"], "value"])


def test_two_apps_glucose_readings_four_minutes_apart_with_different_values_are_two_measurements() -> None:
    rows = [
        ("BLOOD_GLUCOSE", 150, "2024-05-01 08:00", "2024-05-01 08:00", "Ring"),
        ("BLOOD_GLUCOSE", 105, "2024-05-01 08:04", "2024-05-01 08:04", "Scale"),
    ]
    result = compute(samples(rows))
    assert result.readings["kept"].tolist() == [True, True]
    glucose = result.daily.set_index("metric").loc["BLOOD_GLUCOSE"]
    assert (glucose["count"], glucose["value"]) == (2, pytest.approx(127.5))


# (metric, better source's value, other source's value, seconds between them, one measurement?)
EDGES = [
    # glucose: 300 s, 1.8 mg/dL (one 0.1 mmol/L step)
    ("BLOOD_GLUCOSE", 100.0, 100.0, 300, True),
    ("BLOOD_GLUCOSE", 100.0, 100.0, 301, False),
    ("BLOOD_GLUCOSE", 100.0, 101.8, 60, True),
    ("BLOOD_GLUCOSE", 100.0, 98.2, 60, True),
    ("BLOOD_GLUCOSE", 100.0, 101.9, 60, False),
    ("BLOOD_GLUCOSE", 100.0, 101.8, 301, False),
    ("BLOOD_GLUCOSE", 99.0, 5.5 * GLUCOSE_MG_DL_PER_MMOL_L, 120, True),  # 99 mg/dL and 5.5 mmol/L (99.09 mg/dL)
    ("BLOOD_GLUCOSE", 99.0, 5.7 * GLUCOSE_MG_DL_PER_MMOL_L, 120, False),  # 5.7 mmol/L is 102.69 mg/dL
    # weight: 600 s, 0.1 kg
    ("WEIGHT", 70.0, 154.3 * LB, 600, True),  # 154.3 lb is 69.99 kg
    ("WEIGHT", 70.0, 70.1, 60, True),
    ("WEIGHT", 70.0, 70.2, 60, False),
    ("WEIGHT", 70.0, 70.0, 601, False),
    # heart rate: 30 s, 1 bpm
    ("HEART_RATE", 70.0, 71.0, 30, True),
    ("HEART_RATE", 70.0, 71.0, 31, False),
    ("HEART_RATE", 70.0, 72.0, 0, False),
    ("HEART_RATE", 70.0, 68.5, 10, False),
    # resting heart rate: 3600 s, 1 bpm
    ("RESTING_HEART_RATE", 55.0, 56.0, 3600, True),
    ("RESTING_HEART_RATE", 55.0, 57.0, 600, False),
    ("RESTING_HEART_RATE", 55.0, 55.0, 3601, False),
    # SpO2: 60 s, 1 %
    ("OXYGEN_SATURATION", 97.0, 96.0, 60, True),
    ("OXYGEN_SATURATION", 97.0, 95.0, 10, False),
    ("OXYGEN_SATURATION", 97.0, 97.0, 61, False),
    # body fat: 600 s, 0.1 %
    ("BODY_FAT", 23.4, 23.5, 600, True),
    ("BODY_FAT", 23.4, 23.6, 60, False),
    ("BODY_FAT", 23.4, 23.4, 601, False),
]


@pytest.mark.parametrize(("metric", "better", "other", "seconds", "one"), EDGES)
def test_readings_are_one_measurement_only_within_both_tolerances(
    metric: str, better: float, other: float, seconds: int, one: bool
) -> None:
    at = [str(pd.Timestamp("2024-05-01 08:00") + pd.Timedelta(seconds=s)) for s in (0, seconds)]
    rows = [(metric, better, at[0], at[0], "Watch"), (metric, other, at[1], at[1], "Typed")]
    assert kept_values(rows) == ([round(better, 4)] if one else sorted([round(better, 4), round(other, 4)]))


def test_the_match_is_the_nearest_agreeing_reading_not_the_nearest_one() -> None:
    """The watch read 80, 85 and 70 bpm around the ring's 70: the two nearest disagree, the third (19 s away, within
    30 s) is the same measurement."""
    rows = [
        ("HEART_RATE", 80, "2024-05-01 10:00:00", "2024-05-01 10:00:00", "Watch"),  # id0000
        ("HEART_RATE", 85, "2024-05-01 10:00:02", "2024-05-01 10:00:02", "Watch"),  # id0001
        ("HEART_RATE", 70, "2024-05-01 10:00:20", "2024-05-01 10:00:20", "Watch"),  # id0002
        ("HEART_RATE", 70, "2024-05-01 10:00:01", "2024-05-01 10:00:01", "Ring"),  # id0003: same as id0002
        ("HEART_RATE", 84, "2024-05-01 10:00:03", "2024-05-01 10:00:03", "Ring"),  # id0004: same as id0001
        ("HEART_RATE", 75, "2024-05-01 10:00:10", "2024-05-01 10:00:10", "Ring"),  # id0005: agrees with none
    ]
    readings = compute(samples(rows)).readings.set_index("identity")
    assert readings["kept"].to_dict() == {
        "id0000": True,
        "id0001": True,
        "id0002": True,
        "id0003": False,
        "id0004": False,
        "id0005": True,
    }
    assert readings["matched_identity"].dropna().to_dict() == {"id0003": "id0002", "id0004": "id0001"}
    hr = compute(samples(rows)).daily.set_index("metric").loc["HEART_RATE"]
    assert (hr["count"], hr["sum"]) == (4, 80 + 85 + 70 + 75)


def test_of_two_agreeing_readings_the_nearest_in_time_is_the_match() -> None:
    rows = [
        ("WEIGHT", 70.0, "2024-05-01 07:00", "2024-05-01 07:00", "Scale"),  # id0000
        ("WEIGHT", 70.1, "2024-05-01 07:06", "2024-05-01 07:06", "Scale"),  # id0001
        ("WEIGHT", 70.05, "2024-05-01 07:04", "2024-05-01 07:04", "Typed"),  # id0002: both agree, id0001 is nearer
    ]
    readings = compute(samples(rows)).readings.set_index("identity")
    assert readings["matched_identity"].dropna().to_dict() == {"id0002": "id0001"}
