"""The dbt marts against hand-computed numbers: daily rows written by hand for a user in Europe/Amsterdam around the
DST change of 31 March 2024 and the month boundaries (weekly, monthly, daily_wide, source_contributions,
cohort_daily), the catalogue table, and the data dictionary (every marts and core table and column commented)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pandas as pd
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from pipeline.catalog import METRICS
from pipeline.infra.database import create_warehouse_engine, psycopg_connection
from pipeline.marts.catalogue import catalogue_rows, wide_column
from tests.support.marts import build_full, table

USER = "anna"
UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


# (day, metric, value, sum, count, min, max, latest_value, latest_at, flagged_count)
DAILY = [
    ("2024-03-22", "STEPS", 800, 800, 8, 40, 300, 60, at("2024-03-22 19:00"), 0),
    ("2024-03-26", "STEPS", 1000, 1000, 10, 50, 200, 80, at("2024-03-26 20:00"), 0),
    ("2024-03-31", "STEPS", 3000, 3000, 20, 10, 400, 30, at("2024-03-31 19:00"), 0),  # 23-hour day
    ("2024-04-01", "STEPS", 500, 500, 5, 20, 150, 20, at("2024-04-01 18:00"), 0),
    ("2024-04-30", "STEPS", 2000, 2000, 9, 30, 500, 90, at("2024-04-30 17:00"), 2),
    ("2024-05-02", "STEPS", 4000, 4000, 12, 60, 900, 70, at("2024-05-02 16:00"), 0),
    ("2024-03-22", "HEART_RATE", 100, 500, 5, 90, 110, 95, at("2024-03-22 19:00"), 0),
    ("2024-03-26", "HEART_RATE", 60, 600, 10, 50, 70, 61, at("2024-03-26 20:00"), 0),
    ("2024-03-31", "HEART_RATE", 80, 1600, 20, 55, 120, 77, at("2024-03-31 19:30"), 0),
    ("2024-03-26", "WEIGHT", 80.0, 80.0, 1, 80.0, 80.0, 80.0, at("2024-03-26 06:00"), 0),
    ("2024-03-31", "WEIGHT", 95.0, 95.0, 1, 95.0, 95.0, 95.0, at("2024-03-31 07:00"), 1),  # flagged: not the latest
    ("2024-03-31", "SLEEP_ANALYSIS", 420, 420, 1, 420, 420, 420, at("2024-03-31 05:00"), 0),
    ("2024-04-01", "SLEEP_ANALYSIS", 450, 450, 1, 450, 450, 450, at("2024-04-01 05:30"), 0),
]
COHORT_DAY = "2024-04-03"  # five other users' steps: 1000 ... 5000


@pytest.fixture(scope="module")
def marts(make_database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    from pipeline.infra.migrations import migrate

    url: URL = make_database()
    migrate(url)
    engine = create_warehouse_engine(url)
    with psycopg_connection(engine) as conn, conn.transaction():
        conn.execute("INSERT INTO app.users (user_id, home_timezone) VALUES (%s, 'Europe/Amsterdam')", (USER,))
        for day, metric, *values in DAILY:
            conn.execute(
                "INSERT INTO marts.daily VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (USER, day, metric, *values),
            )
        for i in range(1, 6):
            conn.execute(
                "INSERT INTO marts.daily VALUES (%s, %s, 'STEPS', %s, %s, 1, %s, %s, %s, now(), 0)",
                (f"other{i}", COHORT_DAY, 1000 * i, 1000 * i, 1000 * i, 1000 * i, 1000 * i),
            )
        # every local hour of the 23-hour 31 March in Amsterdam (00:00 CET = 23:00 UTC the day before, next midnight
        # CEST = 22:00 UTC) holds steps, one also heart rate: 23 hours with data
        conn.execute(
            """INSERT INTO marts.hourly (user_id, local_date, metric, local_hour, hour_start_utc, value, sum, count)
               SELECT %s, '2024-03-31', m, (h AT TIME ZONE 'Europe/Amsterdam'), h, 1, 1, 1
               FROM generate_series('2024-03-30 23:00+00'::timestamptz, '2024-03-31 21:00+00', '1 hour') h,
                    unnest(ARRAY['STEPS', 'HEART_RATE']) m
               WHERE m = 'STEPS' OR h = '2024-03-31 10:00+00'""",
            (USER,),
        )
        for source, device, raw, kept in [("Watch", "watch", 2500, 2400), ("Phone", "phone", 2000, 600)]:
            conn.execute(
                "INSERT INTO core.source_totals VALUES (%s, '2024-03-31', 'STEPS', %s, %s, %s, %s)",
                (USER, source, device, raw, kept),
            )
        conn.execute(
            "INSERT INTO core.source_totals VALUES (%s, '2024-03-31', 'HEART_RATE', 'Phone', 'phone', 3, 0)", (USER,)
        )
    build_full(url, tmp_path_factory.mktemp("dbt"))
    yield engine
    engine.dispose()


def rows(engine: Engine, name: str, start: str, metric: str) -> pd.DataFrame:
    frame = table(engine, name)
    frame = frame[(frame["user_id"] == USER) & (frame["metric"] == metric)].sort_values(start)
    frame[start] = frame[start].astype(str)
    return frame.set_index(start)


def test_weekly_rolls_up_local_iso_weeks_across_the_dst_change_and_month_ends(marts: Engine) -> None:
    steps = rows(marts, "marts.weekly", "week_start", "STEPS")
    # 22 Mar alone; 26 + 31 Mar (the DST week, Monday 25 Mar); 1 Apr; 30 Apr + 2 May (a week across a month end)
    assert steps.index.tolist() == ["2024-03-18", "2024-03-25", "2024-04-01", "2024-04-29"]
    assert steps["value"].tolist() == [800, 4000, 500, 6000]
    assert steps["sum"].tolist() == [800, 4000, 500, 6000]
    assert steps["count"].tolist() == [8, 30, 5, 21]
    assert steps["min"].tolist() == [40, 10, 20, 30]
    assert steps["max"].tolist() == [300, 400, 150, 900]
    assert steps["days_with_data"].tolist() == [1, 2, 1, 2]
    assert steps["flagged_count"].tolist() == [0, 0, 0, 2]
    assert steps.loc["2024-03-25", "latest_value"] == 30
    assert steps.loc["2024-03-25", "latest_at"] == at("2024-03-31 19:00")
    assert steps.loc["2024-04-29", "latest_value"] == 70  # 2 May's, the later day
    heart = rows(marts, "marts.weekly", "week_start", "HEART_RATE")
    # (600 + 1600) / (10 + 20) readings, not the mean of the daily means (70)
    assert heart.loc["2024-03-25", "value"] == pytest.approx(2200 / 30, rel=1e-12)
    assert heart.loc["2024-03-25", "latest_value"] == 77
    weight = rows(marts, "marts.weekly", "week_start", "WEIGHT")
    # the latest unflagged reading (26 Mar), not the flagged one of 31 Mar
    assert weight.loc["2024-03-25", ["value", "latest_value", "flagged_count"]].tolist() == [80.0, 80.0, 1]
    assert weight.loc["2024-03-25", "latest_at"] == at("2024-03-26 06:00")
    sleep = rows(marts, "marts.weekly", "week_start", "SLEEP_ANALYSIS")
    assert sleep["value"].to_dict() == {"2024-03-25": 420, "2024-04-01": 450}


def test_monthly_rolls_up_calendar_months(marts: Engine) -> None:
    steps = rows(marts, "marts.monthly", "month_start", "STEPS")
    assert steps["value"].to_dict() == {"2024-03-01": 4800, "2024-04-01": 2500, "2024-05-01": 4000}
    assert steps["count"].to_dict() == {"2024-03-01": 38, "2024-04-01": 14, "2024-05-01": 12}
    assert steps["days_with_data"].to_dict() == {"2024-03-01": 3, "2024-04-01": 2, "2024-05-01": 1}
    assert steps.loc["2024-04-01", ["min", "max", "latest_value", "flagged_count"]].tolist() == [20, 500, 90, 2]
    heart = rows(marts, "marts.monthly", "month_start", "HEART_RATE")
    assert heart.loc["2024-03-01", "value"] == pytest.approx(2700 / 35, rel=1e-12)  # not (100 + 60 + 80) / 3
    assert heart.loc["2024-03-01", ["min", "max"]].tolist() == [50, 120]
    sleep = rows(marts, "marts.monthly", "month_start", "SLEEP_ANALYSIS")
    assert sleep["value"].to_dict() == {"2024-03-01": 420, "2024-04-01": 450}


def test_daily_wide_has_a_column_per_catalogue_metric_and_counts_the_dst_days_hours(marts: Engine) -> None:
    wide = table(marts, "marts.daily_wide")
    assert list(wide.columns) == [
        "user_id",
        "local_date",
        *[wide_column(m) for m in METRICS.values()],
        "hours_with_data",
    ]
    day = wide[(wide["user_id"] == USER) & (wide["local_date"] == dt.date(2024, 3, 31))].iloc[0]
    assert day[["steps", "heart_rate_avg_bpm", "weight_kg", "sleep_minutes"]].tolist() == [3000, 80, 95.0, 420]
    assert pd.isna(day["distance_m"]) and pd.isna(day["glucose_avg_mg_dl"])
    assert day["hours_with_data"] == 23
    other = wide[(wide["user_id"] == USER) & (wide["local_date"] == dt.date(2024, 3, 26))].iloc[0]
    assert other["hours_with_data"] == 0  # daily rows, no hourly ones
    assert len(wide) == len({(d, u) for d, *_ in DAILY for u in [USER]}) + 5


def test_source_contributions_share_what_was_kept(marts: Engine) -> None:
    frame = table(marts, "marts.source_contributions").set_index(["metric", "source_name"])
    assert frame.loc[("STEPS", "Watch"), ["device_class", "raw_total", "kept_total", "kept_share"]].tolist() == [
        "watch",
        2500,
        2400,
        pytest.approx(0.8),
    ]
    assert frame.loc[("STEPS", "Phone"), "kept_share"] == pytest.approx(0.2)
    assert pd.isna(frame.loc[("HEART_RATE", "Phone"), "kept_share"])  # nothing kept: no share


def test_cohort_daily_percentiles(marts: Engine) -> None:
    cohort = table(marts, "marts.cohort_daily")
    day = cohort[(cohort["local_date"] == dt.date.fromisoformat(COHORT_DAY)) & (cohort["metric"] == "STEPS")].iloc[0]
    # continuous percentiles of 1000..5000: p5 = 1000 + 0.05 * 4 * 1000
    assert day[["users", "p5", "p25", "p50", "p75", "p95"]].tolist() == [5, 1200, 2000, 3000, 4000, 4800]
    single = cohort[(cohort["local_date"] == dt.date(2024, 3, 31)) & (cohort["metric"] == "STEPS")].iloc[0]
    assert single[["users", "p5", "p95"]].tolist() == [1, 3000, 3000]


def test_the_metrics_table_is_the_catalogue(marts: Engine) -> None:
    metrics = table(marts, "marts.metrics")
    expected = pd.DataFrame(catalogue_rows()).rename(columns={"column": "wide_column"})
    pd.testing.assert_frame_equal(metrics, expected[metrics.columns], check_dtype=False)
    assert metrics.set_index("metric").loc["HEART_RATE", ["unit", "aggregation", "wide_column"]].tolist() == [
        "bpm",
        "average",
        "heart_rate_avg_bpm",
    ]


def test_wide_column_names_carry_the_unit() -> None:
    names = {m.name: wide_column(m) for m in METRICS.values()}
    assert names["STEPS"] == "steps" and names["DISTANCE"] == "distance_m"
    assert names["SLEEP_ANALYSIS"] == "sleep_minutes" and names["HEART_RATE"] == "heart_rate_avg_bpm"
    assert names["BLOOD_GLUCOSE"] == "glucose_avg_mg_dl" and names["BODY_FAT"] == "body_fat_pct"


def test_every_marts_and_core_table_and_column_has_a_comment(marts: Engine) -> None:
    with psycopg_connection(marts) as conn:
        missing = conn.execute(
            """SELECT n.nspname || '.' || c.relname || coalesce('.' || a.attname, '')
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                    AND col_description(c.oid, a.attnum) IS NULL
               WHERE n.nspname IN ('marts', 'core') AND c.relkind IN ('r', 'p', 'v', 'm')
                 AND (obj_description(c.oid, 'pg_class') IS NULL OR a.attname IS NOT NULL)
               ORDER BY 1"""
        ).fetchall()
        tables = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'marts' AND c.relkind = 'r'"
        ).fetchone()
    assert [m for (m,) in missing] == []
    assert tables == (13,)  # hourly, daily, the six dbt models, insights (3 tables), health scores (2)
