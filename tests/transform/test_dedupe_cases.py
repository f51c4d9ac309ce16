"""Hand-computed deduplication and aggregation cases (DESIGN §5, §6)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from pipeline.transform.compute import compute
from pipeline.transform.dedupe import priorities

CLASSES = {"Watch": "watch", "Phone": "phone", "Ring": "wearable", "Scale": "scale_or_app", "Typed": "manual"}


def samples(rows: list[tuple], user: str = "u", orders: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """rows: (metric, value, start, end, source[, zone[, stage]]) with ISO UTC instants."""
    frame = pd.DataFrame(
        [
            {
                "user_id": user,
                "metric": r[0],
                "value": float(r[1]),
                "start_utc": pd.Timestamp(r[2], tz="UTC"),
                "end_utc": pd.Timestamp(r[3], tz="UTC"),
                "source_name": r[4],
                "device_class": CLASSES[r[4]],
                "zone": r[5] if len(r) > 5 else "UTC",
                "stage": r[6] if len(r) > 6 else None,
                "identity": f"id{i:04d}",
            }
            for i, r in enumerate(rows)
        ]
    )
    frame["priority"] = priorities(frame["device_class"], frame["user_id"], orders)
    return frame


def daily(result, metric: str = "STEPS") -> dict[str, float]:
    d = result.daily[result.daily["metric"] == metric]
    return {str(k): float(v) for k, v in zip(d["local_date"], d["value"], strict=True)}


def hourly(result, metric: str = "STEPS") -> list[tuple[str, str, float]]:
    h = result.hourly[result.hourly["metric"] == metric].sort_values("hour_start_utc")
    return [
        (str(a), str(b), round(float(c), 6))
        for a, b, c in zip(h["local_hour"], h["hour_start_utc"], h["value"], strict=True)
    ]


def test_partial_overlaps_of_three_sources() -> None:
    # watch 100 over 10:00-10:10; phone 150 over 10:05-10:20 (10/min); ring 300 over 09:55-10:25 (10/min)
    result = compute(
        samples(
            [
                ("STEPS", 100, "2024-05-01 10:00", "2024-05-01 10:10", "Watch"),
                ("STEPS", 150, "2024-05-01 10:05", "2024-05-01 10:20", "Phone"),
                ("STEPS", 300, "2024-05-01 09:55", "2024-05-01 10:25", "Ring"),
            ]
        )
    )
    # watch 100; phone 10:10-10:20 = 100; ring 09:55-10:00 and 10:20-10:25 = 50 + 50. Naive sum: 550.
    assert daily(result) == {"2024-05-01": pytest.approx(300.0)}
    assert hourly(result) == [
        ("2024-05-01 09:00:00", "2024-05-01 09:00:00+00:00", 50.0),
        ("2024-05-01 10:00:00", "2024-05-01 10:00:00+00:00", 250.0),
    ]
    totals = result.source_totals.set_index("source_name")
    assert totals.loc["Phone", ["raw", "kept"]].tolist() == pytest.approx([150.0, 100.0])
    assert totals.loc["Ring", ["raw", "kept"]].tolist() == pytest.approx([300.0, 100.0])
    assert totals.loc["Watch", ["raw", "kept"]].tolist() == pytest.approx([100.0, 100.0])
    won = result.slices[result.slices["won"]].sort_values("slice_start_utc")
    assert [
        (s.strftime("%H:%M"), e.strftime("%H:%M"), src)
        for s, e, src in zip(won["slice_start_utc"], won["slice_end_utc"], won["source_name"], strict=True)
    ] == [
        ("09:55", "10:00", "Ring"),
        ("10:00", "10:05", "Watch"),
        ("10:05", "10:10", "Watch"),
        ("10:10", "10:15", "Phone"),
        ("10:15", "10:20", "Phone"),
        ("10:20", "10:25", "Ring"),
    ]


def test_the_result_does_not_depend_on_input_order() -> None:
    rows = [
        ("STEPS", 100, "2024-05-01 10:00", "2024-05-01 10:10", "Watch"),
        ("STEPS", 150, "2024-05-01 10:05", "2024-05-01 10:20", "Phone"),
        ("STEPS", 300, "2024-05-01 09:55", "2024-05-01 10:25", "Ring"),
    ]
    forward = compute(samples(rows)).daily
    backward = compute(samples(rows[::-1])).daily
    pd.testing.assert_frame_equal(forward.reset_index(drop=True), backward.reset_index(drop=True))


def test_a_zero_length_manual_entry_counts_only_outside_a_watch_interval() -> None:
    result = compute(
        samples(
            [
                ("STEPS", 600, "2024-05-01 10:00", "2024-05-01 10:10", "Watch"),
                ("STEPS", 500, "2024-05-01 10:03", "2024-05-01 10:03", "Typed"),  # inside: the watch covers it
                ("STEPS", 200, "2024-05-01 11:30", "2024-05-01 11:30", "Typed"),  # outside: counts at its instant
                (
                    "STEPS",
                    50,
                    "2024-05-01 10:10",
                    "2024-05-01 10:10",
                    "Typed",
                ),  # at the watch's end: [start, end) excludes
            ]
        )
    )
    assert daily(result) == {"2024-05-01": pytest.approx(850.0)}
    assert hourly(result) == [
        ("2024-05-01 10:00:00", "2024-05-01 10:00:00+00:00", 650.0),
        ("2024-05-01 11:00:00", "2024-05-01 11:00:00+00:00", 200.0),
    ]


def test_a_sample_crossing_an_hour_and_midnight_is_split_proportionally() -> None:
    # Berlin, summer (+02:00): 21:50Z-22:10Z is 23:50-00:10 local; 200 steps, 100 on each side of midnight
    result = compute(samples([("STEPS", 200, "2024-06-30 21:50", "2024-06-30 22:10", "Phone", "Europe/Berlin")]))
    assert daily(result) == {"2024-06-30": pytest.approx(100.0), "2024-07-01": pytest.approx(100.0)}
    assert hourly(result) == [
        ("2024-06-30 23:00:00", "2024-06-30 21:00:00+00:00", 100.0),
        ("2024-07-01 00:00:00", "2024-06-30 22:00:00+00:00", 100.0),
    ]


def test_the_fall_back_hour_is_two_buckets_and_the_day_has_25_hours() -> None:
    # New York, 2024-11-03: 01:00-02:00 happens twice (EDT, then EST). One sample per UTC hour of the local day.
    start = pd.Timestamp("2024-11-03 04:00", tz="UTC")  # 00:00 EDT
    rows = [
        (
            "STEPS",
            60,
            str(start + pd.Timedelta(hours=h))[:16],
            str(start + pd.Timedelta(hours=h, minutes=30))[:16],
            "Watch",
            "America/New_York",
        )
        for h in range(25)
    ]
    result = compute(samples(rows))
    buckets = result.hourly[result.hourly["local_date"] == dt.date(2024, 11, 3)]
    assert len(buckets) == 25
    repeated = buckets[buckets["local_hour"] == pd.Timestamp("2024-11-03 01:00")]
    assert sorted(str(t) for t in repeated["hour_start_utc"]) == [
        "2024-11-03 05:00:00+00:00",
        "2024-11-03 06:00:00+00:00",
    ]
    assert daily(result) == {"2024-11-03": pytest.approx(25 * 60.0)}
    # and a spring-forward day has 23
    spring = pd.Timestamp("2024-03-10 05:00", tz="UTC")  # 00:00 EST
    rows = [
        (
            "STEPS",
            10,
            str(spring + pd.Timedelta(hours=h))[:16],
            str(spring + pd.Timedelta(hours=h, minutes=5))[:16],
            "Watch",
            "America/New_York",
        )
        for h in range(23)
    ]
    spring_result = compute(samples(rows))
    assert (spring_result.hourly["local_date"] == dt.date(2024, 3, 10)).sum() == 23


def test_a_travellers_day_uses_each_samples_zone() -> None:
    # London -> Singapore. The 23:30Z sample is 23:30 on 1 May in London but 07:30 on 2 May in Singapore.
    result = compute(
        samples(
            [
                ("STEPS", 1000, "2024-05-01 12:00", "2024-05-01 12:30", "Phone", "Europe/London"),
                ("STEPS", 400, "2024-05-01 23:30", "2024-05-01 23:40", "Phone", "Asia/Singapore"),
            ]
        )
    )
    assert daily(result) == {"2024-05-01": pytest.approx(1000.0), "2024-05-02": pytest.approx(400.0)}
    assert hourly(result)[1] == ("2024-05-02 07:00:00", "2024-05-01 23:00:00+00:00", 400.0)


def test_a_user_who_trusts_the_phone_more_gets_other_numbers() -> None:
    rows = [
        ("STEPS", 100, "2024-05-01 10:00", "2024-05-01 10:10", "Watch"),
        ("STEPS", 300, "2024-05-01 10:00", "2024-05-01 10:10", "Phone"),
    ]
    assert daily(compute(samples(rows))) == {"2024-05-01": pytest.approx(100.0)}
    phone_first = samples(rows, orders={"u": ["phone", "watch"]})
    assert daily(compute(phone_first)) == {"2024-05-01": pytest.approx(300.0)}


def test_exact_duplicates_collapse_to_one() -> None:
    rows = [("STEPS", 100, "2024-05-01 10:00", "2024-05-01 10:10", "Watch")] * 3
    result = compute(samples(rows))
    assert result.exact_duplicates == 2
    assert daily(result) == {"2024-05-01": pytest.approx(100.0)}


def test_discrete_readings_within_tolerance_are_one_measurement() -> None:
    result = compute(
        samples(
            [
                ("HEART_RATE", 70, "2024-05-01 10:00:00", "2024-05-01 10:00:00", "Watch"),
                ("HEART_RATE", 71, "2024-05-01 10:00:20", "2024-05-01 10:00:20", "Ring"),  # 20 s, 1 bpm: the same one
                ("HEART_RATE", 90, "2024-05-01 10:05:00", "2024-05-01 10:05:00", "Ring"),  # alone: kept
                ("HEART_RATE", 60, "2024-05-01 10:10:00", "2024-05-01 10:10:00", "Watch"),
                ("WEIGHT", 70.2, "2024-05-01 07:05", "2024-05-01 07:05", "Scale"),
                ("WEIGHT", 70.2, "2024-05-01 07:07", "2024-05-01 07:07", "Typed"),  # typed-in copy: dropped
                ("WEIGHT", 70.6, "2024-05-01 19:00", "2024-05-01 19:00", "Typed"),
            ]
        )
    )
    hr = result.daily.set_index("metric").loc["HEART_RATE"]
    assert (hr["sum"], hr["count"], hr["min"], hr["max"]) == (220.0, 3, 60.0, 90.0)
    assert hr["value"] == pytest.approx(220.0 / 3)
    weight = result.daily.set_index("metric").loc["WEIGHT"]
    assert (weight["value"], weight["count"]) == (70.6, 2)  # latest of the day
    dropped = result.readings[~result.readings["kept"]]
    assert sorted(dropped["source_name"]) == ["Ring", "Typed"]


def test_sleep_stages_win_over_a_generic_wrapper_and_count_on_the_wake_up_day() -> None:
    # Berlin (UTC+2). Phone in bed 22:00Z-05:00Z; watch: generic "asleep" 22:30Z-04:30Z wrapping detailed stages
    # core 22:30-01:00, deep 01:00-02:00, awake 02:00-02:30, rem 02:30-04:30. Ring stages overlap but rank below.
    result = compute(
        samples(
            [
                ("SLEEP_ANALYSIS", 0, "2024-06-30 22:00", "2024-07-01 05:00", "Phone", "Europe/Berlin", "in_bed"),
                ("SLEEP_ANALYSIS", 0, "2024-06-30 22:30", "2024-07-01 04:30", "Watch", "Europe/Berlin", "asleep"),
                ("SLEEP_ANALYSIS", 0, "2024-06-30 22:30", "2024-07-01 01:00", "Watch", "Europe/Berlin", "core"),
                ("SLEEP_ANALYSIS", 0, "2024-07-01 01:00", "2024-07-01 02:00", "Watch", "Europe/Berlin", "deep"),
                ("SLEEP_ANALYSIS", 0, "2024-07-01 02:00", "2024-07-01 02:30", "Watch", "Europe/Berlin", "awake"),
                ("SLEEP_ANALYSIS", 0, "2024-07-01 02:30", "2024-07-01 04:30", "Watch", "Europe/Berlin", "rem"),
                ("SLEEP_ANALYSIS", 0, "2024-07-01 04:00", "2024-07-01 06:00", "Ring", "Europe/Berlin", "core"),
            ]
        )
    )
    # asleep: 150 + 60 + 120 (watch) + 90 (ring after the watch ends, 04:30-06:00) = 420 min; awake 30 not counted
    assert daily(result, "SLEEP_ANALYSIS") == {"2024-07-01": pytest.approx(420.0)}
    assert len(result.sessions) == 1
    assert str(result.sessions["wake_date"].iloc[0]) == "2024-07-01"
    # "Why this number" reads the source totals: asleep minutes on the wake-up day, as the day's value counts them.
    # The watch reported 150 + 60 + 120 asleep (its generic wrapper is the same time, once); the ring 120, 90 kept;
    # the phone's in-bed time is not sleep.
    totals = result.source_totals.set_index("source_name")[["local_date", "raw", "kept"]]
    assert {name: (str(d), raw, kept) for name, (d, raw, kept) in totals.iterrows()} == {
        "Watch": ("2024-07-01", pytest.approx(330.0), pytest.approx(330.0)),
        "Ring": ("2024-07-01", pytest.approx(120.0), pytest.approx(90.0)),
    }
    assert result.source_totals["kept"].sum() == pytest.approx(420.0)


def test_a_night_with_only_in_bed_time_counts_no_sleep_anywhere() -> None:
    # Berlin: the phone records in bed 22:30-06:30 local (8 h) and nothing else: not asleep, so no day's sleep value
    # and no sleep among the sources either (the evening before the night starting 20:30Z belongs to 2024-07-01).
    result = compute(
        samples(
            [
                ("SLEEP_ANALYSIS", 0, "2024-07-01 20:30", "2024-07-02 04:30", "Phone", "Europe/Berlin", "in_bed"),
                ("STEPS", 500, "2024-07-02 06:00", "2024-07-02 06:10", "Phone", "Europe/Berlin"),
            ]
        )
    )
    assert daily(result, "SLEEP_ANALYSIS") == {}
    assert result.source_totals["metric"].tolist() == ["STEPS"]
    assert len(result.sessions) == 0
