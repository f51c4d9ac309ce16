"""marts.health_scores on a real PostgreSQL: the daily marts and marts.cohort_daily (built by the dbt model's own
statement) give the hand-computed scores; a flagged day's input is left out; a user with too little data has no row;
a rerun writes the same values; a day is replaced as a whole."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest
from sqlalchemy.engine import URL

from pipeline import accounts
from pipeline.scores.compute import score_range
from tests.insights.series import day
from tests.insights.test_episodes_db import add_daily, connect

# marts.cohort_daily as the dbt model (dbt_like_sql/models/marts/cohort_daily.sql) computes it, over every user
COHORT_DAILY = """
CREATE TABLE IF NOT EXISTS marts.cohort_daily AS SELECT local_date, metric, 0 AS users,
    0.0::float8 AS p5, 0.0::float8 AS p25, 0.0::float8 AS p50, 0.0::float8 AS p75, 0.0::float8 AS p95
    FROM marts.daily WHERE false;
DELETE FROM marts.cohort_daily;
INSERT INTO marts.cohort_daily
SELECT d.local_date, d.metric, count(*)::integer,
       percentile_cont(0.05) WITHIN GROUP (ORDER BY d.value), percentile_cont(0.25) WITHIN GROUP (ORDER BY d.value),
       percentile_cont(0.50) WITHIN GROUP (ORDER BY d.value), percentile_cont(0.75) WITHIN GROUP (ORDER BY d.value),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY d.value)
FROM marts.daily d GROUP BY d.local_date, d.metric
"""
COLUMNS = ("user_id", "score", "activity", "sleep", "vitals", "completeness", "cohort_users")


def build_cohort_daily(url: URL) -> None:
    with connect(url) as conn:
        conn.execute(COHORT_DAILY)


def add(url: URL, metric: str, by_user: dict[str, float], offset: int = 0, flagged: Sequence[str] = ()) -> None:
    for user, value in by_user.items():
        add_daily(url, user, metric, [value], start=offset, flagged=1 if user in flagged else 0)


def scores(url: URL, offset: int = 0) -> dict[str, dict[str, object]]:
    with connect(url) as conn:
        rows = conn.execute(
            f"SELECT {', '.join(COLUMNS)} FROM marts.health_scores WHERE local_date = %s ORDER BY user_id",
            (day(offset),),
        ).fetchall()
    return {str(r[0]): dict(zip(COLUMNS[1:], r[1:], strict=True)) for r in rows}


@pytest.fixture
def cohort(warehouse_url: URL) -> URL:
    """Four users on day 0; d's resting heart rate day is flagged, so d has activity only."""
    with connect(warehouse_url) as conn:
        for user in "abcd":
            accounts.create_user(conn, user, "UTC")
    add(warehouse_url, "STEPS", {"a": 4_000, "b": 8_000, "c": 12_000, "d": 8_000})
    add(warehouse_url, "ACTIVE_ENERGY", {"a": 300, "b": 300, "c": 300, "d": 300})
    add(warehouse_url, "RESTING_HEART_RATE", {"a": 50, "b": 60, "c": 70, "d": 40}, flagged=["d"])
    build_cohort_daily(warehouse_url)
    return warehouse_url


def test_scores_of_a_small_cohort_as_computed_by_hand(cohort: URL) -> None:
    result = score_range(cohort, day(0), day(0))
    # steps 4000, 8000, 12000, 8000: cohort p5 4600, p95 11400 -> 4600, 8000, 11400, 8000 -> 0, .5, 1, .5
    # energy all 300: .5 each -> activity 25, 50, 75, 50
    # resting HR: the cohort (flagged 40 included) p5 41.5, p95 68.5; d's flagged day left out:
    # 50, 60, 68.5 -> (68.5 - v) / 18.5: 1, 8.5 / 18.5, 0 -> vitals 100, 45.95, 0; d: activity only -> no row
    vitals_b = 100 * 8.5 / 18.5
    expected = {
        "a": {"score": (0.4 * 25 + 0.3 * 100) / 0.7, "activity": 25.0, "vitals": 100.0},
        "b": {"score": (0.4 * 50 + 0.3 * vitals_b) / 0.7, "activity": 50.0, "vitals": vitals_b},
        "c": {"score": (0.4 * 75) / 0.7, "activity": 75.0, "vitals": 0.0},
    }
    rows = scores(cohort)
    assert set(rows) == {"a", "b", "c"}
    for user, values in expected.items():
        for name, value in values.items():
            assert rows[user][name] == pytest.approx(value), (user, name)
        # steps and energy (0.4) and resting HR (0.3 x 0.5); no sleep
        assert rows[user]["sleep"] is None and rows[user]["completeness"] == pytest.approx(0.55)
        assert rows[user]["cohort_users"] == 3
    assert result.scores == 3 and result.distribution["count"] == 3 and result.bounds_missing == 0
    assert result.distribution["p50"] == pytest.approx(round((0.4 * 50 + 0.3 * vitals_b) / 0.7, 2))


def test_a_rerun_writes_the_same_values_and_a_day_is_replaced_whole(cohort: URL) -> None:
    add(cohort, "STEPS", {"a": 5_000, "b": 6_000, "c": 7_000}, offset=1)
    add(cohort, "ACTIVE_ENERGY", {"a": 100, "b": 200, "c": 300}, offset=1)
    build_cohort_daily(cohort)
    score_range(cohort, day(0), day(1))
    first = (scores(cohort, 0), scores(cohort, 1))
    score_range(cohort, day(0), day(1))
    assert (scores(cohort, 0), scores(cohort, 1)) == first
    # b's day 1 data is withdrawn: day 1's cohort drops under 3 users for both inputs; nobody keeps a stale row
    with connect(cohort) as conn:
        conn.execute("DELETE FROM marts.daily WHERE user_id = 'b' AND local_date = %s", (day(1),))
        days = conn.execute("SELECT local_date, scored_users FROM marts.health_score_days ORDER BY 1").fetchall()
    assert days == [(day(0), 3), (day(1), 0)]  # day 1: one component each, no score
    build_cohort_daily(cohort)
    score_range(cohort, day(1), day(1))
    assert scores(cohort, 1) == {} and scores(cohort, 0) == first[0]


def test_sleep_regularity_and_a_flagged_spo2_day_are_read(warehouse_url: URL) -> None:
    with connect(warehouse_url) as conn:
        for user in "abc":
            accounts.create_user(conn, user, "UTC")
        # main sessions: midpoints 03:00 each night for a; b shifts by 60 minutes, c by 120
        for user, shift in (("a", 0), ("b", 60), ("c", 120)):
            for offset, extra in ((0, 0), (1, shift)):
                start = dt.datetime.combine(day(offset), dt.time(23, 0), dt.UTC) - dt.timedelta(days=1)
                start += dt.timedelta(minutes=extra)
                conn.execute(
                    "INSERT INTO core.sleep_sessions (user_id, local_date, session_start_utc, session_end_utc, "
                    "asleep_minutes) VALUES (%s, %s, %s, %s, 480)",
                    (user, day(offset), start, start + dt.timedelta(hours=8)),
                )
    add(warehouse_url, "SLEEP_ANALYSIS", {"a": 480, "b": 480, "c": 480}, offset=1)
    add(warehouse_url, "OXYGEN_SATURATION", {"a": 97, "b": 95, "c": 88}, offset=1, flagged=["c"])
    add(warehouse_url, "RESTING_HEART_RATE", {"a": 60, "b": 60, "c": 60}, offset=1)  # all equal: 0.5
    build_cohort_daily(warehouse_url)
    score_range(warehouse_url, day(1), day(1))
    rows = scores(warehouse_url, 1)
    # regularity 0, 60, 120 (no cohort_daily row: its own p5 6, p95 114) -> (114 - v) / 108: 1, .5, 0;
    # duration in band for all: 1 -> sleep = 0.6 + 0.4 x regularity
    assert [rows[u]["sleep"] for u in "abc"] == pytest.approx([100.0, 80.0, 60.0])
    # SpO2 counts flagged: p5 88.7, p95 96.8 -> 96.8, 95, 88.7 -> (v - 88.7) / 8.1: 1, 6.3 / 8.1, 0
    assert [rows[u]["vitals"] for u in "abc"] == pytest.approx([75.0, 50 * (6.3 / 8.1 + 0.5), 25.0])


def test_days_without_data_are_recorded_as_scored_with_nobody(warehouse_url: URL) -> None:
    result = score_range(warehouse_url, day(0), day(2))
    assert (result.scores, result.users, result.distribution, result.bounds_missing) == (0, 0, {"count": 0}, 0)
    with connect(warehouse_url) as conn:
        days = conn.execute("SELECT local_date, scored_users FROM marts.health_score_days ORDER BY 1").fetchall()
    assert days == [(day(0), 0), (day(1), 0), (day(2), 0)]
