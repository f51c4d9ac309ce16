"""The summary's freshness: the user's latest finished batch that landed anything, their own or one of several
users holding some of theirs; unfinished, empty and other users' batches never count."""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import psycopg
from sqlalchemy import Engine

from api.queries.summary import day_summary
from pipeline.infra.database import psycopg_connection
from tests.support.helpers import new_user

UTC = dt.UTC


def _batch(conn: psycopg.Connection[tuple[object, ...]], user: str | None, finished: str | None, landed: int) -> int:
    row = conn.execute(
        """INSERT INTO app.ingest_batches (user_id, source, status, landed_count, finished_at)
           VALUES (%s, 'synthetic', 'done', %s, %s) RETURNING batch_id""",
        (user, landed, finished),
    ).fetchone()
    assert row is not None
    return int(row[0])  # type: ignore[call-overload]


def _sample(conn: psycopg.Connection[tuple[object, ...]], user: str, batch: int) -> None:
    conn.execute(
        "SELECT raw.add_sample_months(ARRAY[(now() AT TIME ZONE 'UTC')::date])"
    )  # raw.samples is partitioned by month
    conn.execute(
        """INSERT INTO raw.samples (identity, user_id, metric, value, unit, start_utc, end_utc, source_name,
           device_class, batch_id) VALUES (%s, %s, 'STEPS', 10, 'count', now(), now(), 'Phone', 'phone', %s)""",
        (uuid.uuid4(), user, batch),
    )


def freshness(conn: psycopg.Connection[tuple[object, ...]], user: str) -> dict[str, object]:
    return day_summary(conn, user, dt.date(2024, 5, 1))


def test_the_latest_landed_batch_of_the_user_or_of_several_users_holding_theirs(engine: Engine) -> None:
    user, other = new_user(engine), new_user(engine)
    with psycopg_connection(engine) as conn:
        assert freshness(conn, user)["last_landed_at"] is None  # nothing landed yet
        _batch(conn, user, "2024-05-01 10:00+00", 5)
        assert freshness(conn, user)["last_landed_at"] == dt.datetime(2024, 5, 1, 10, tzinfo=UTC)
        shared = _batch(conn, None, "2024-05-02 10:00+00", 7)  # several users' batch holding the user's samples
        _sample(conn, user, shared)
        _sample(conn, other, shared)
        assert freshness(conn, user)["last_landed_at"] == dt.datetime(2024, 5, 2, 10, tzinfo=UTC)
        others = _batch(conn, None, "2024-05-03 10:00+00", 4)  # several users', none of this user's samples
        _sample(conn, other, others)
        _batch(conn, other, "2024-05-04 10:00+00", 3)  # another user's own
        _batch(conn, user, None, 0)  # still running
        _batch(conn, user, "2024-05-05 10:00+00", 0)  # finished, landed nothing (all duplicates)
        assert freshness(conn, user)["last_landed_at"] == dt.datetime(2024, 5, 2, 10, tzinfo=UTC)
        assert freshness(conn, other)["last_landed_at"] == dt.datetime(2024, 5, 4, 10, tzinfo=UTC)
        _batch(conn, user, "2024-05-06 10:00+00", 1)
        assert freshness(conn, user)["last_landed_at"] == dt.datetime(2024, 5, 6, 10, tzinfo=UTC)


def test_the_last_data_date_is_the_latest_day_with_a_value_up_to_the_users_local_today(engine: Engine) -> None:
    zone = "Pacific/Kiritimati"  # UTC+14: its today is often UTC's tomorrow
    user, other = new_user(engine, zone), new_user(engine)
    today = dt.datetime.now(ZoneInfo(zone)).date()
    with psycopg_connection(engine) as conn:
        assert freshness(conn, user)["last_data_date"] is None  # no day computed yet
        for who, day, metric in (
            (user, today - dt.timedelta(days=5), "STEPS"),
            (user, today - dt.timedelta(days=3), "HEART_RATE"),
            (user, today + dt.timedelta(days=1), "STEPS"),  # a device's clock ahead: not a day to open on
            (other, today - dt.timedelta(days=1), "STEPS"),  # someone else's
        ):
            conn.execute(
                """INSERT INTO marts.daily (user_id, local_date, metric, value, sum, count)
                   VALUES (%s, %s, %s, 1, 1, 1)""",
                (who, day, metric),
            )
        assert freshness(conn, user)["last_data_date"] == today - dt.timedelta(days=3)
        assert freshness(conn, other)["last_data_date"] == today - dt.timedelta(days=1)
