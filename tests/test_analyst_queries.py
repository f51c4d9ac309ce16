"""The five analyst queries of docs/analysts.md, run from that page itself as the ``analyst`` role, on rows whose
answers are computed by hand in the comments: the page cannot drift from what works."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

from pipeline.infra.database import libpq_url
from pipeline.infra.migrations import migrate
from pipeline.infra.roles import ANALYST_ROLE, role_url
from pipeline.marts.project import run_dbt

ROOT = Path(__file__).resolve().parent.parent
D = dt.date.fromisoformat


def documented_queries() -> list[str]:
    """The SQL blocks under docs/analysts.md's "Five queries", in order."""
    docs = (ROOT / "docs" / "analysts.md").read_text(encoding="utf-8")
    section = docs.split("\n## Five queries\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)\n```", section, re.S)


QUERIES = documented_queries()
WEEKLY, KEPT_SHARE, HOURLY_HEART_RATE, COHORT, SLEEP_DROPPED = QUERIES


def test_docs_analysts_holds_the_five_queries_and_the_readme_points_to_them() -> None:
    assert len(QUERIES) == 5
    assert "FROM marts.weekly" in WEEKLY and "core.source_totals" in KEPT_SHARE and "marts.cohort_daily" in COHORT
    assert "docs/analysts.md" in (ROOT / "README.md").read_text(encoding="utf-8")


# STEPS per user and local day. Weeks (Monday first): 2024-04-29..05-05 and 05-06..05-12.
DAILY_STEPS = {
    "anna": {"2024-04-29": 8000, "2024-04-30": 6000, "2024-05-01": 10000, "2024-05-05": 2000, "2024-05-06": 12000,
             "2024-05-07": 9000},
    "ben": {"2024-05-01": 4000, "2024-05-08": 7000},
    "cara": {"2024-05-01": 6000, "2024-05-02": 9000},
    "dan": {"2024-05-01": 8000},
    "eve": {"2024-05-01": 12000},
}  # fmt: skip

# Sleep minutes per night (counted for the wake-up day). The latest night of anyone is 2024-05-31, so the last 7
# nights are 05-25..05-31 and the 28 before them 04-27..05-24.
SLEEP_NIGHTS = [
    ("anna", "2024-04-27", "2024-05-24", 480),
    ("anna", "2024-05-25", "2024-05-31", 400),  # 400 <= 0.9 * 480 = 432: listed
    ("ben", "2024-04-27", "2024-05-24", 420),
    ("ben", "2024-05-25", "2024-05-31", 400),  # 400 > 378: not listed
    ("cara", "2024-05-01", "2024-05-10", 450),  # 10 nights only: the averages are over nights with data
    ("cara", "2024-05-29", "2024-05-31", 300),  # 300 <= 405: listed
    ("dan", "2024-04-26", "2024-04-26", 600),  # 35 nights back: in neither window (else the 28 would average 310.3)
    ("dan", "2024-04-27", "2024-05-24", 300),
    ("dan", "2024-05-25", "2024-05-31", 240),  # 240 <= 270: listed
    ("eve", "2024-04-27", "2024-05-20", 500),  # no night in the last 7: not listed
]


def insert_daily(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    rows = [(user, D(day), "STEPS", steps) for user, days in DAILY_STEPS.items() for day, steps in days.items()] + [
        ("anna", D("2024-05-01"), "DISTANCE", 7400.0),
        ("anna", D("2024-06-10"), "WEIGHT", 61.5),
    ]
    with conn.cursor().copy("COPY marts.daily (user_id, local_date, metric, value, sum, count) FROM STDIN") as copy:
        for user, day, metric, value in rows:
            copy.write_row((user, day, metric, value, value, 1))
    for user, first, last, minutes in SLEEP_NIGHTS:
        conn.execute(
            "INSERT INTO marts.daily (user_id, local_date, metric, value, sum, count) "
            "SELECT %s, night, 'SLEEP_ANALYSIS', %s, %s, 1 FROM generate_series(%s::date, %s::date, '1 day') night",
            (user, minutes, minutes, D(first), D(last)),
        )


def insert_hourly_and_source_totals(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    hourly = [  # user, local hour (Europe/Amsterdam, UTC+2), metric, value (the average), sum, count, min, max
        ("anna", "2024-05-01 08:00", "HEART_RATE", 70, 210, 3, 65, 75),
        ("anna", "2024-05-01 09:00", "HEART_RATE", 110, 220, 2, 100, 120),
        ("anna", "2024-05-01 07:00", "HEART_RATE", 95, 95, 1, 95, 95),  # written last, comes first
        ("anna", "2024-05-02 08:00", "HEART_RATE", 90, 90, 1, 90, 90),  # another day
        ("ben", "2024-05-01 08:00", "HEART_RATE", 80, 80, 1, 80, 80),  # another user
        ("anna", "2024-05-01 08:00", "STEPS", 900, 900, 2, 400, 500),  # another metric
    ]
    for user, hour, metric, value, total, count, low, high in hourly:
        conn.execute(
            "INSERT INTO marts.hourly (user_id, local_date, metric, local_hour, hour_start_utc, value, sum, count, "
            "min, max) VALUES (%s, %s::timestamp::date, %s, %s::timestamp, %s::timestamp AT TIME ZONE "
            "'Europe/Amsterdam', %s, %s, %s, %s, %s)",
            (user, hour, metric, hour, hour, value, total, count, low, high),
        )
    totals = [  # user, day, metric, source, device class, raw, kept
        ("anna", "2024-05-01", "STEPS", "Anna's Watch", "watch", 6000, 6000),
        ("anna", "2024-05-01", "STEPS", "iPhone", "phone", 5000, 1000),
        ("anna", "2024-05-02", "STEPS", "Anna's Watch", "watch", 4000, 3000),
        ("ben", "2024-05-01", "STEPS", "Pixel", "phone", 3000, 3000),
        ("anna", "2024-05-01", "HEART_RATE", "Anna's Watch", "watch", 100, 90),  # counts of readings
        ("anna", "2024-05-01", "HEART_RATE", "Polar H10", "wearable", 20, 10),
        ("ben", "2024-05-01", "DISTANCE", "Health app", "manual", 0, 0),  # reported nothing: no share, no error
    ]
    with conn.cursor().copy(
        "COPY core.source_totals (user_id, local_date, metric, source_name, device_class, raw, kept) FROM STDIN"
    ) as copy:
        for user, day, *rest in totals:
            copy.write_row((user, D(day), *rest))


@pytest.fixture(scope="module")
def warehouse(make_database: Callable[[], URL], tmp_path_factory: pytest.TempPathFactory) -> URL:
    url = make_database()
    migrate(url)
    with psycopg.connect(libpq_url(url)) as conn:
        insert_daily(conn)
        insert_hourly_and_source_totals(conn)
    # the dbt models (marts.weekly, marts.cohort_daily) built by the owner, as a range run builds them: the analyst
    # reads them through the default privileges
    run_dbt(["run", "--full-refresh"], tmp_path_factory.mktemp("dbt"), url)
    return url


def run_as_analyst(url: URL, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(libpq_url(role_url(url, ANALYST_ROLE))) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (ANALYST_ROLE,)
        return conn.execute(query.encode()).fetchall()


def test_weekly_steps_trend_per_user(warehouse: URL) -> None:
    rows = run_as_analyst(warehouse, WEEKLY)

    assert rows == [
        ("anna", D("2024-04-29"), 26000.0, 4, None),  # 8000 + 6000 + 10000 + 2000 (Sunday 05-05)
        ("anna", D("2024-05-06"), 21000.0, 2, -5000.0),  # 12000 + 9000, 5000 fewer than the week before
        ("ben", D("2024-04-29"), 4000.0, 1, None),
        ("ben", D("2024-05-06"), 7000.0, 1, 3000.0),
        ("cara", D("2024-04-29"), 15000.0, 2, None),
        ("dan", D("2024-04-29"), 8000.0, 1, None),
        ("eve", D("2024-04-29"), 12000.0, 1, None),
    ]


def test_kept_share_by_device_class(warehouse: URL) -> None:
    rows = sorted(run_as_analyst(warehouse, KEPT_SHARE), key=lambda r: (str(r[0]), str(r[1])))

    assert rows == [
        ("DISTANCE", "manual", None),
        ("HEART_RATE", "watch", 0.9),  # 90 of 100 readings
        ("HEART_RATE", "wearable", 0.5),  # 10 of 20
        ("STEPS", "phone", 0.5),  # (1000 + 3000) / (5000 + 3000)
        ("STEPS", "watch", 0.9),  # (6000 + 3000) / (6000 + 4000)
    ]


def test_hourly_heart_rate_for_a_day(warehouse: URL) -> None:
    rows = run_as_analyst(warehouse, HOURLY_HEART_RATE)

    assert rows == [
        (dt.datetime(2024, 5, 1, 7), 95.0, 95.0, 95.0, 1),
        (dt.datetime(2024, 5, 1, 8), 70.0, 65.0, 75.0, 3),
        (dt.datetime(2024, 5, 1, 9), 110.0, 100.0, 120.0, 2),
    ]


def test_cohort_percentiles_of_daily_steps_and_one_user_s(warehouse: URL) -> None:
    rows = run_as_analyst(warehouse, COHORT)

    assert rows == [
        (D("2024-04-29"), 8000.0, 1, 8000.0, 8000.0, 8000.0),  # anna alone that day
        (D("2024-04-30"), 6000.0, 1, 6000.0, 6000.0, 6000.0),
        # 4000, 6000, 8000, 10000, 12000: the quartiles fall on the 2nd, 3rd and 4th user
        (D("2024-05-01"), 10000.0, 5, 6000.0, 8000.0, 10000.0),
        (D("2024-05-05"), 2000.0, 1, 2000.0, 2000.0, 2000.0),
        (D("2024-05-06"), 12000.0, 1, 12000.0, 12000.0, 12000.0),
        (D("2024-05-07"), 9000.0, 1, 9000.0, 9000.0, 9000.0),
    ]


def test_users_whose_sleep_dropped(warehouse: URL) -> None:
    rows = sorted(run_as_analyst(warehouse, SLEEP_DROPPED), key=lambda r: str(r[0]))

    assert rows == [("anna", 400.0, 480.0), ("cara", 300.0, 450.0), ("dan", 240.0, 300.0)]
