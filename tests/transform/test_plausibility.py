"""Implausible values are flagged, not dropped. A body-metric reading far from the median of the same
user's neighbouring readings, a sleep entry over 14 h and a night over 14 h asleep are flagged; every hourly and daily
row counts its flagged samples (flagged_count), and a LATEST metric's value is the latest unflagged reading. Through
the database path: raw samples landed from a file, deduplicate_partitions, then the SQL models."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pytest
from sqlalchemy.engine import URL

from pipeline.infra.database import create_warehouse_engine, libpq_url
from pipeline.ingest.importer import import_file
from pipeline.samples.io import arrow_connection, load_inputs, transaction
from pipeline.samples.process import aggregate_partitions, deduplicate_partitions
from pipeline.transform.compute import compute, prepare_samples
from pipeline.transform.validate import validate
from tests.support.helpers import new_user

DAY = dt.date(2024, 5, 1)


def land(url: URL, tmp_path: Path, user: str, records: list[dict[str, Any]]) -> None:
    path = tmp_path / f"{user}.ndjson"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    engine = create_warehouse_engine(url)
    import_file(engine, path, user)
    engine.dispose()


def run(url: URL, user: str, days: list[dt.date]) -> None:
    """Recompute exactly these user-days: core tables, then marts.hourly and marts.daily."""
    user_days = pd.DataFrame({"user_id": [user] * len(days), "local_date": days})
    with arrow_connection(url) as conn:
        deduplicate_partitions(conn, user_days)
        aggregate_partitions(conn, user_days, "hourly")
        aggregate_partitions(conn, user_days, "daily")


def rows(url: URL, query: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq_url(url)) as conn:
        return conn.execute(query.encode(), params).fetchall()


DAILY = "local_date, metric, value, count, flagged_count, latest_value, latest_at"


def pure_daily(url: URL, user: str, days: list[dt.date]) -> list[tuple[Any, ...]]:
    """The same user-days through the pure path (compute's pandas aggregation), as marts.daily rows."""
    user_days = pd.DataFrame({"user_id": [user] * len(days), "local_date": days})
    with arrow_connection(url) as conn, transaction(conn):
        inputs = load_inputs(conn, user_days)
    samples = prepare_samples(validate(inputs.raw).accepted, inputs.users, inputs.history, inputs.orders)
    daily = compute(samples, user_days).daily.sort_values(["local_date", "metric"])
    return [
        (d, str(m), float(v), int(c), int(f), float(lv), la.to_pydatetime())
        for d, m, v, c, f, lv, la in daily[DAILY.split(", ")].itertuples(index=False)
    ]


def sql_daily(url: URL, user: str) -> list[tuple[Any, ...]]:
    return rows(url, f"SELECT {DAILY} FROM marts.daily WHERE user_id = %s ORDER BY local_date, metric", user)


def weighing(value: float, day: dt.date, hour: int) -> dict[str, Any]:
    at = f"{day.isoformat()}T{hour:02d}:00:00+00:00"
    return {"type": "WEIGHT", "value": value, "unit": "kg", "startDate": at, "endDate": at, "sourceDevice": "Scale"}


def days_from(first: dt.date, count: int) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range(count)]


@pytest.mark.parametrize("odd", [25.0, 160.0])
def test_a_weight_far_from_the_users_own_readings_is_flagged_counted_and_kept_out_of_latest(
    warehouse_url: URL, tmp_path: Path, odd: float
) -> None:
    """75, 75.4, 74.8, <odd>, 75.2 kg at 19:00 on five days, plus 75.1 kg at 07:00 on the fourth. The odd reading's
    neighbours (the five others, all within 14 days) have the median 75.1 kg: 25 kg is 66.7 % below it, 160 kg
    113 % above; the limit is 10 %. Every other reading is within 0.4 % of its neighbours' median."""
    user = new_user(create_warehouse_engine(warehouse_url))
    days = days_from(DAY, 5)
    values = [75.0, 75.4, 74.8, odd, 75.2]
    land(
        warehouse_url,
        tmp_path,
        user,
        [weighing(v, d, 19) for v, d in zip(values, days, strict=True)] + [weighing(75.1, days[3], 7)],
    )
    run(warehouse_url, user, days)

    readings = rows(warehouse_url, "SELECT value, flags FROM core.readings WHERE user_id = %s ORDER BY start_utc", user)
    assert [v for v, _ in readings] == [75.0, 75.4, 74.8, 75.1, odd, 75.2]
    flagged = [(v, f) for v, f in readings if f is not None]
    assert [v for v, _ in flagged] == [odd]
    assert "median 75.1 kg of 5 neighbouring readings" in flagged[0][1]

    daily = rows(
        warehouse_url,
        "SELECT local_date, value, count, flagged_count, latest_value, latest_at FROM marts.daily "
        "WHERE user_id = %s AND metric = 'WEIGHT' ORDER BY local_date",
        user,
    )
    assert [(d, v, c, f) for d, v, c, f, _, _ in daily] == [
        (days[0], 75.0, 1, 0),
        (days[1], 75.4, 1, 0),
        (days[2], 74.8, 1, 0),
        (days[3], 75.1, 2, 1),  # the 19:00 reading is the day's latest, but flagged: the 07:00 one is its value
        (days[4], 75.2, 1, 0),
    ]
    assert daily[3][4] == 75.1 and daily[3][5] == dt.datetime(2024, 5, 4, 7, tzinfo=dt.UTC)
    hourly = rows(
        warehouse_url,
        "SELECT extract(hour FROM local_hour)::int, value, count, flagged_count FROM marts.hourly "
        "WHERE user_id = %s AND local_date = %s ORDER BY local_hour",
        user,
        days[3],
    )
    assert hourly == [(7, 75.1, 1, 0), (19, odd, 1, 1)]  # an hour with only the flagged reading still shows it
    assert pure_daily(warehouse_url, user, days) == sql_daily(warehouse_url, user)  # pandas and SQL agree

    # the odd day recomputed on its own gives the same flags and rows
    run(warehouse_url, user, [days[3]])
    alone = rows(warehouse_url, "SELECT value, flags FROM core.readings WHERE user_id = %s ORDER BY start_utc", user)
    assert alone == readings


def test_a_weekly_weighing_is_judged_by_neighbours_outside_the_padded_window(
    warehouse_url: URL, tmp_path: Path
) -> None:
    """Weighed once a week: 80, 80.4, 79.8 kg, then 95 kg, then 80.2 kg. The 95 kg reading's neighbours within 14 days
    are 80.4, 79.8 and 80.2 (median 80.2 kg: 18.5 % away); none of them is within the two days a partition's load is
    otherwise padded with, so recomputing that day alone must read them too."""
    user = new_user(create_warehouse_engine(warehouse_url))
    days = [DAY + dt.timedelta(weeks=i) for i in range(5)]
    land(
        warehouse_url,
        tmp_path,
        user,
        [weighing(v, d, 8) for v, d in zip([80.0, 80.4, 79.8, 95.0, 80.2], days, strict=True)],
    )
    run(warehouse_url, user, [days[3]])  # the odd day alone, never the whole history
    (reading,) = rows(
        warehouse_url, "SELECT value, flags FROM core.readings WHERE user_id = %s AND local_date = %s", user, days[3]
    )
    assert reading[0] == 95.0 and "median 80.2 kg of 3 neighbouring readings" in reading[1]
    assert rows(
        warehouse_url,
        "SELECT count, flagged_count FROM marts.daily WHERE user_id = %s AND local_date = %s",
        user,
        days[3],
    ) == [(1, 1)]
    run(warehouse_url, user, days)  # and the whole history: the same single flag
    flags = rows(warehouse_url, "SELECT value FROM core.readings WHERE user_id = %s AND flags IS NOT NULL", user)
    assert flags == [(95.0,)]


def sleep(start: str, end: str, source: str, device_class: str, stage: str = "asleep") -> dict[str, Any]:
    return {
        "type": "SLEEP_ANALYSIS",
        "value": 0,
        "unit": "min",
        "stage": stage,
        "startDate": start,
        "endDate": end,
        "sourceDevice": source,
        "deviceClass": device_class,
    }


def test_a_twenty_hour_night_from_two_apps_and_a_long_manual_entry_is_flagged_on_its_wake_up_day(
    warehouse_url: URL, tmp_path: Path
) -> None:
    """Watch asleep 23:00-07:00, a sleep app 22:00-06:00, and a typed entry 11:00-22:00 the day before: no entry is
    over 14 h, but together they are one night of 20 h asleep (11:00 to 07:00), over the 14 h limit. The night can't
    say which sample is wrong, so all three count as flagged on the wake-up day's sleep row."""
    user = new_user(create_warehouse_engine(warehouse_url))
    land(
        warehouse_url,
        tmp_path,
        user,
        [
            sleep("2024-05-01T23:00:00+00:00", "2024-05-02T07:00:00+00:00", "Watch", "watch"),
            sleep("2024-05-01T22:00:00+00:00", "2024-05-02T06:00:00+00:00", "Sleep Cycle", "scale_or_app"),
            sleep("2024-05-01T11:00:00+00:00", "2024-05-01T22:00:00+00:00", "Typed", "manual"),
        ],
    )
    run(warehouse_url, user, [DAY, DAY + dt.timedelta(days=1)])
    assert rows(
        warehouse_url,
        "SELECT local_date, asleep_minutes, flagged_samples FROM core.sleep_sessions WHERE user_id = %s",
        user,
    ) == [(dt.date(2024, 5, 2), 1200.0, 3)]
    assert rows(
        warehouse_url,
        "SELECT local_date, value, count, flagged_count FROM marts.daily "
        "WHERE user_id = %s AND metric = 'SLEEP_ANALYSIS'",
        user,
    ) == [(dt.date(2024, 5, 2), 1200.0, 1, 3)]
    # the night's hours: 11:00-21:59 typed, 22:00-22:59 the app, 23:00-06:59 the watch; each hour one flagged sample
    hourly = rows(
        warehouse_url,
        "SELECT count(*), sum(count), sum(flagged_count), sum(value) FROM marts.hourly "
        "WHERE user_id = %s AND metric = 'SLEEP_ANALYSIS'",
        user,
    )
    assert hourly == [(20, 20, 20, 1200.0)]
    assert rows(warehouse_url, "SELECT bool_and(flagged) FROM core.slices WHERE user_id = %s", user) == [(True,)]
    assert pure_daily(warehouse_url, user, [DAY, DAY + dt.timedelta(days=1)]) == sql_daily(warehouse_url, user)


def test_an_ordinary_night_from_two_sources_is_not_flagged(warehouse_url: URL, tmp_path: Path) -> None:
    """Watch 23:00-07:00 and a sleep app 22:30-06:30: one night of 8.5 h asleep, nothing flagged."""
    user = new_user(create_warehouse_engine(warehouse_url))
    land(
        warehouse_url,
        tmp_path,
        user,
        [
            sleep("2024-05-01T23:00:00+00:00", "2024-05-02T07:00:00+00:00", "Watch", "watch"),
            sleep("2024-05-01T22:30:00+00:00", "2024-05-02T06:30:00+00:00", "Sleep Cycle", "scale_or_app"),
        ],
    )
    run(warehouse_url, user, [DAY, DAY + dt.timedelta(days=1)])
    assert rows(
        warehouse_url,
        "SELECT local_date, value, count, flagged_count FROM marts.daily "
        "WHERE user_id = %s AND metric = 'SLEEP_ANALYSIS'",
        user,
    ) == [(dt.date(2024, 5, 2), 510.0, 1, 0)]
    assert rows(warehouse_url, "SELECT sum(flagged_count) FROM marts.hourly WHERE user_id = %s", user) == [(0,)]
    assert rows(warehouse_url, "SELECT bool_or(flagged) FROM core.slices WHERE user_id = %s", user) == [(False,)]


def test_a_sleep_entry_over_14_hours_is_flagged_on_its_own(warehouse_url: URL, tmp_path: Path) -> None:
    """An "in bed" entry left running for 16 h (20:00-12:00) around an 8 h night: the entry is flagged, the night
    (asleep stages only) is not over its limit and counts no flagged sample."""
    user = new_user(create_warehouse_engine(warehouse_url))
    land(
        warehouse_url,
        tmp_path,
        user,
        [
            sleep("2024-05-01T20:00:00+00:00", "2024-05-02T12:00:00+00:00", "Phone", "phone", stage="in_bed"),
            sleep("2024-05-01T23:00:00+00:00", "2024-05-02T07:00:00+00:00", "Watch", "watch"),
        ],
    )
    run(warehouse_url, user, [DAY, DAY + dt.timedelta(days=1)])
    flagged = rows(
        warehouse_url,
        "SELECT DISTINCT stage, flagged FROM core.slices WHERE user_id = %s ORDER BY stage",
        user,
    )
    assert flagged == [("asleep", False), ("in_bed", True)]
    assert rows(
        warehouse_url,
        "SELECT value, flagged_count FROM marts.daily WHERE user_id = %s AND metric = 'SLEEP_ANALYSIS'",
        user,
    ) == [(480.0, 0)]


def test_the_daily_check_fails_when_a_days_flagged_count_is_not_its_hours(warehouse_url: URL, tmp_path: Path) -> None:
    """The blocking check of daily_aggregates: the day's flagged_count is the sum of its hours' (as its value is, for
    cumulative metrics). Computed by the models it holds; a day rewritten to hide its flagged reading fails it."""
    from pipeline.samples.checks import _Scope, daily_rows_add_up_their_hours

    user = new_user(create_warehouse_engine(warehouse_url))
    days = days_from(DAY, 5)
    land(
        warehouse_url,
        tmp_path,
        user,
        [weighing(v, d, 8) for v, d in zip([70, 70.2, 45, 69.8, 70.1], days, strict=True)],
    )
    run(warehouse_url, user, days)
    with arrow_connection(warehouse_url) as conn:
        outcome = daily_rows_add_up_their_hours(_Scope(conn, staged=False))
        conn.rollback()
    assert outcome.passed and outcome.metadata == {"mismatched_days": 0, "mismatched_flagged_counts": 0}
    rows(warehouse_url, "UPDATE marts.daily SET flagged_count = 0 WHERE user_id = %s RETURNING 1", user)
    with arrow_connection(warehouse_url) as conn:
        outcome = daily_rows_add_up_their_hours(_Scope(conn, staged=False))
        conn.rollback()
    assert not outcome.passed and outcome.metadata["mismatched_flagged_counts"] == 1
