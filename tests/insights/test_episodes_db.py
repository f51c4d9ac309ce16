"""marts.insights on a real PostgreSQL: an episode's row is created once, updated while the condition persists,
resolved (not deleted) when it clears; a rerun writes nothing; acknowledged_at survives every recompute; the loaders
read the marts and core tables as the rules expect."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

import psycopg
import pytest
from sqlalchemy.engine import URL

from pipeline import accounts, cli
from pipeline.infra.database import libpq_url
from pipeline.insights.evaluate import evaluate_days
from tests.insights.series import day

# sleep of anna: 400 min a night on days 0-9, then 480: the 7-night mean is under 7 h from day 3 (the 4th night)
# to day 10 (six nights of 400 and one of 480: 411.4 min); on day 11 it is 422.9 min
SLEEP = [400.0] * 10 + [480.0] * 5
EPISODE_ID = uuid.UUID(bytes=__import__("hashlib").md5(f"anna\x1fsleep_deficit\x1f\x1f{day(3)}".encode()).digest())


def connect(url: URL) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(libpq_url(url), autocommit=True)


def add_daily(url: URL, user: str, metric: str, values: Sequence[float], start: int = 0, flagged: int = 0) -> None:
    with connect(url) as conn:
        conn.cursor().executemany(
            "INSERT INTO marts.daily (user_id, local_date, metric, value, sum, count, min, max, flagged_count) "
            "VALUES (%s, %s, %s, %s, %s, 1, %s, %s, %s) "
            "ON CONFLICT (user_id, local_date, metric) DO UPDATE SET value = excluded.value, sum = excluded.sum",
            [(user, day(start + i), metric, v, v, v, v, flagged) for i, v in enumerate(values)],
        )


@pytest.fixture
def anna(warehouse_url: URL) -> URL:
    with connect(warehouse_url) as conn:
        accounts.create_user(conn, "anna", "Europe/Amsterdam")
        accounts.create_user(conn, "ben", "UTC")
    add_daily(warehouse_url, "anna", "SLEEP_ANALYSIS", SLEEP)
    add_daily(warehouse_url, "ben", "SLEEP_ANALYSIS", [480.0] * 15)
    return warehouse_url


def insights(url: URL) -> list[dict[str, object]]:
    with connect(url) as conn:
        cursor = conn.execute("SELECT * FROM marts.insights ORDER BY user_id, rule, subject, first_evaluated_day")
        names = [c.name for c in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def evaluate_each(url: URL, first: int, last: int, users: list[str] | None = None) -> None:
    for offset in range(first, last + 1):
        evaluate_days(url, day(offset), day(offset), users)


def test_an_episode_is_one_row_updated_while_it_lasts_and_a_rerun_writes_nothing(anna: URL) -> None:
    evaluate_each(anna, 0, 3)
    [row] = insights(anna)
    assert row["insight_id"] == EPISODE_ID
    assert (row["user_id"], row["rule"], row["severity"], row["direction"], row["status"]) == (
        "anna",
        "sleep_deficit",
        "medium",
        "decreasing",
        "active",
    )
    assert (row["first_evaluated_day"], row["last_evaluated_day"], row["resolved_on"]) == (day(3), day(3), None)
    assert row["numbers"] == {"mean_sleep_minutes_7d": 400.0}
    assert row["message"] == "You slept 6 h 40 min a night on average this week; adults need 7 h or more."
    evaluate_each(anna, 4, 5)
    [later] = insights(anna)
    assert (later["insight_id"], later["last_evaluated_day"], later["created_at"]) == (
        EPISODE_ID,
        day(5),
        row["created_at"],
    )
    before = insights(anna)
    evaluate_days(anna, day(5), day(5))
    evaluate_days(anna, day(3), day(5))
    assert insights(anna) == before  # updated_at included: nothing was written


def test_an_acknowledged_insight_stays_acknowledged_and_a_cleared_one_is_resolved(anna: URL) -> None:
    evaluate_each(anna, 3, 4)
    seen = dt.datetime(2024, 3, 6, 8, 30, tzinfo=dt.UTC)
    with connect(anna) as conn:
        conn.execute("UPDATE marts.insights SET acknowledged_at = %s", (seen,))
    evaluate_each(anna, 5, 12)
    evaluate_days(anna, day(4), day(12))  # a recompute of days already evaluated
    [row] = insights(anna)
    assert row["acknowledged_at"] == seen
    assert (row["status"], row["last_evaluated_day"], row["resolved_on"]) == ("resolved", day(10), day(11))
    assert row["numbers"] == {"mean_sleep_minutes_7d": pytest.approx((400 * 6 + 480) / 7, abs=1e-4)}


def test_a_range_evaluated_in_one_call_or_day_by_day_in_any_order_gives_the_same_rows(
    anna: URL, make_database: object
) -> None:
    evaluate_days(anna, day(0), day(14))
    whole = insights(anna)
    with connect(anna) as conn:
        conn.execute("TRUNCATE marts.insights, marts.insight_days, marts.insight_evaluations")
    for offset in [7, 3, 12, 0, 14, 11, 5, 1, 9, 13, 2, 10, 6, 4, 8]:
        evaluate_days(anna, day(offset), day(offset))
    volatile = ("created_at", "updated_at")
    assert [{k: v for k, v in r.items() if k not in volatile} for r in insights(anna)] == [
        {k: v for k, v in r.items() if k not in volatile} for r in whole
    ]
    assert [(r["user_id"], r["status"], r["resolved_on"]) for r in whole] == [("anna", "resolved", day(11))]


def test_late_data_that_removes_an_episodes_start_moves_it_and_other_users_are_untouched(anna: URL) -> None:
    add_daily(anna, "ben", "SLEEP_ANALYSIS", [300.0] * 7, start=8)  # ben: short nights from day 8
    evaluate_days(anna, day(0), day(14))
    before = {r["user_id"]: r for r in insights(anna)}
    assert before["ben"]["first_evaluated_day"] == day(10)  # 4 x 480 + 3 x 300 min: 402.9 min, under 7 h
    # a late night of 10 h on day 3 for anna: every 7-night window holding it averages 428.6 min or more, so her
    # episode now starts on day 10, when that night has left the window (6 x 400 + 480: 411.4 min)
    add_daily(anna, "anna", "SLEEP_ANALYSIS", [600.0], start=3)
    evaluate_days(anna, day(3), day(14), ["anna"])
    after = {r["user_id"]: r for r in insights(anna)}
    assert after["ben"] == before["ben"]
    assert after["anna"]["first_evaluated_day"] == day(10)
    assert after["anna"]["insight_id"] != before["anna"]["insight_id"]
    assert len(insights(anna)) == 2  # the episode that never was is withdrawn, not left beside the new one


def test_the_step_goal_command_sets_the_goal_the_streak_uses(anna: URL, capsys: pytest.CaptureFixture[str]) -> None:
    add_daily(anna, "anna", "STEPS", [8_500.0] * 7)
    evaluate_days(anna, day(6), day(6))
    assert [r["rule"] for r in insights(anna)] == ["sleep_deficit"]
    assert cli.main(["users", "goal", "anna", "--steps", "8500"]) == 0
    assert capsys.readouterr().out.strip() == "anna: 8,500 steps a day"
    evaluate_days(anna, day(6), day(6))
    streak = [r for r in insights(anna) if r["rule"] == "step_goal_streak"]
    assert streak and streak[0]["numbers"] == {"streak_days": 7, "goal": 8_500.0}
    assert cli.main(["users", "goal", "anna", "--default"]) == 0
    assert capsys.readouterr().out.strip() == "anna: 10,000 steps a day (the default)"
    assert cli.main(["users", "goal", "nobody", "--steps", "5000"]) == 2


def test_the_loaders_read_sleep_midpoints_in_the_home_zone_and_glucose_from_kept_readings(anna: URL) -> None:
    with connect(anna) as conn:
        # anna (Amsterdam, UTC+1 in March): 23:00-07:00 local is 22:00-06:00 UTC, midpoint 03:00 local = 900 min
        # after the previous local noon; a flagged night is left out
        conn.cursor().executemany(
            "INSERT INTO core.sleep_sessions (user_id, local_date, session_start_utc, session_end_utc, asleep_minutes,"
            " flagged_samples) VALUES ('anna', %s, %s, %s, %s, %s)",
            [
                (day(1), dt.datetime(2024, 3, 1, 22, tzinfo=dt.UTC), dt.datetime(2024, 3, 2, 6, tzinfo=dt.UTC), 450, 0),
                (day(1), dt.datetime(2024, 3, 2, 12, tzinfo=dt.UTC), dt.datetime(2024, 3, 2, 13, tzinfo=dt.UTC), 60, 0),
                (day(2), dt.datetime(2024, 3, 2, 23, tzinfo=dt.UTC), dt.datetime(2024, 3, 3, 5, tzinfo=dt.UTC), 350, 3),
            ],
        )
        readings = [(60.0, None), (70.0, None), (180.0, None), (181.0, None), (100.0, None)]
        conn.cursor().executemany(
            "INSERT INTO core.readings (user_id, local_date, metric, start_utc, local_hour, hour_start_utc, value, "
            "source_name, device_class, identity, kept, flags) VALUES ('anna', %s, 'BLOOD_GLUCOSE', %s, %s, %s, %s, "
            "'cgm', 'wearable', gen_random_uuid(), %s, %s)",
            [
                (day(1), at, at.replace(tzinfo=None), at.replace(minute=0), v, i != 4, f)
                for i, (v, f) in enumerate(readings)
                for at in [dt.datetime(2024, 3, 2, 8 + i // 2, 5 * i, tzinfo=dt.UTC)]
            ]
            + [
                (
                    day(2),
                    dt.datetime(2024, 3, 3, 9, tzinfo=dt.UTC),
                    dt.datetime(2024, 3, 3, 10),
                    dt.datetime(2024, 3, 3, 9, tzinfo=dt.UTC),
                    50.0,
                    True,
                    "below soft minimum",
                )
            ],
        )
    from pipeline.insights.io import load_inputs, stage_users
    from pipeline.samples.io import arrow_connection

    with arrow_connection(anna) as conn:
        stage_users(conn, ["anna"])
        inputs = load_inputs(conn, ["anna"], day(0), day(3))
    midpoints = inputs.sleep_midpoints
    assert midpoints[["local_date", "midpoint_minutes"]].values.tolist() == [[day(1), 900.0]]
    glucose = inputs.glucose
    assert glucose.drop(columns="user_id").values.tolist() == [[day(1), 4.0, 2.0, 1.0, 2.0]]


def test_an_evaluation_without_users_or_data_records_the_days_only(warehouse_url: URL) -> None:
    result = evaluate_days(warehouse_url, day(0), day(2))
    assert (result.users, result.findings, result.insights) == (0, 0, [])
    with connect(warehouse_url) as conn:
        accounts.create_user(conn, "carl", "UTC")  # a user without any data
    assert evaluate_days(warehouse_url, day(3), day(3)).findings == 0
    with connect(warehouse_url) as conn:
        assert conn.execute("SELECT count(*) FROM marts.insight_evaluations").fetchone() == (4,)


def test_two_evaluations_of_the_same_days_at_once_both_succeed_and_agree(anna: URL) -> None:
    """The schedule's run and a late-data run may overlap; their writes take turns (an advisory lock)."""
    from concurrent.futures import ThreadPoolExecutor

    evaluate_days(anna, day(0), day(14))
    expected = insights(anna)
    with ThreadPoolExecutor(max_workers=2) as pool:
        for _ in range(3):
            runs = [pool.submit(evaluate_days, anna, day(0), day(14)), pool.submit(evaluate_days, anna, day(3), day(9))]
            assert [run.result().findings for run in runs] == [8, 7]  # her deficit on days 3..10, of them 3..9
    assert insights(anna) == expected


def test_every_rule_gives_the_same_insights_evaluated_as_a_range_or_day_by_day(warehouse_url: URL) -> None:
    """The benchmark's generated marts (steps, heart rate, sleep, SpO2, weight, sessions, device days) for 30 users:
    every window of every rule fits in the days a single day's evaluation loads."""
    from benchmarks.insights import FIRST_DAY, generate

    with connect(warehouse_url) as conn:
        for table, frame in generate(30, 50, seed=11).items():
            with conn.cursor().copy(f"COPY {table} ({', '.join(frame.columns)}) FROM STDIN".encode()) as copy:
                for row in frame.itertuples(index=False):
                    copy.write_row(row)
    last = FIRST_DAY + dt.timedelta(days=49)
    evaluate_days(warehouse_url, FIRST_DAY, last)
    volatile = ("created_at", "updated_at")
    whole = [{k: v for k, v in r.items() if k not in volatile} for r in insights(warehouse_url)]
    with connect(warehouse_url) as conn:
        conn.execute("TRUNCATE marts.insights, marts.insight_days, marts.insight_evaluations")
    for offset in range(50):
        evaluate_days(warehouse_url, FIRST_DAY + dt.timedelta(days=offset), FIRST_DAY + dt.timedelta(days=offset))
    assert [{k: v for k, v in r.items() if k not in volatile} for r in insights(warehouse_url)] == whole
    assert len({r["rule"] for r in whole}) >= 7 and len(whole) > 100
