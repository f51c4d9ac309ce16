"""A warehouse for the read API tests: hand-written marts and core rows for one user (and a little for a second),
the dbt marts built from them (weekly, monthly, source_contributions)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from api.main import create_app
from pipeline.accounts import create_api_key, create_user, set_step_goal
from pipeline.infra.database import create_warehouse_engine, psycopg_connection
from pipeline.infra.migrations import migrate
from tests.support.marts import build_full

UTC = dt.UTC
# (day, metric, value, sum, count, min, max, flagged_count) of the first user, Europe/Amsterdam
DAILY = [
    ("2024-04-30", "STEPS", 3000, 3000, 6, 100, 900, 0),
    ("2024-05-01", "STEPS", 6000, 6000, 10, 100, 1500, 1),
    ("2024-05-02", "STEPS", 9000, 9000, 12, 200, 2000, 0),
    ("2024-05-01", "HEART_RATE", 70, 700, 10, 55, 90, 0),
    ("2024-05-02", "HEART_RATE", 64, 1280, 20, 50, 120, 2),
    ("2024-05-01", "ACTIVE_ENERGY", 250, 250, 5, 10, 120, 0),
    ("2024-05-01", "SLEEP_ANALYSIS", 420, 420, 1, 420, 420, 0),
]
# (local hour, UTC hour start, value, count) of STEPS on 2024-05-01 (CEST: UTC+2)
HOURLY = [("2024-05-01 08:00", "2024-05-01 06:00", 2500, 4), ("2024-05-01 09:00", "2024-05-01 07:00", 3500, 6)]
# (source, device class, raw, kept) of STEPS on 2024-05-01
SOURCE_TOTALS = [("Watch", "watch", 5000, 4800), ("Phone", "phone", 3000, 1200)]
# the night ending 2024-05-01: 22:00 UTC to 05:00 UTC; (stage, start, end, minutes, won, slice's local date)
SLEEP_SLICES = [
    ("core", "2024-04-30 22:00", "2024-04-30 23:30", 90, True, "2024-05-01"),  # 00:00-01:30 local
    ("deep", "2024-04-30 23:30", "2024-05-01 01:10", 100, True, "2024-05-01"),
    ("deep", "2024-04-30 23:30", "2024-05-01 01:10", 100, False, "2024-05-01"),  # the phone's, lost
    ("rem", "2024-05-01 01:10", "2024-05-01 05:00", 230, True, "2024-05-01"),
    ("core", "2024-05-01 12:00", "2024-05-01 12:30", 30, True, "2024-05-01"),  # a nap outside the night
]


def insight_row(user_id: str, rule: str, status: str, first: str, last: str) -> dict[str, object]:
    return {
        "insight_id": uuid.uuid4(),
        "user_id": user_id,
        "rule": rule,
        "severity": "medium",
        "message": f"{rule} message",
        "recommendation": f"{rule} advice",
        "numbers": '{"days": 3}',
        "first": first,
        "last": last,
        "status": status,
        "resolved_on": last if status == "resolved" else None,
    }


@dataclass(frozen=True)
class ReadWorld:
    engine: Engine
    user: str
    other: str
    user_key: str
    other_key: str
    admin_key: str
    active_insight: uuid.UUID
    resolved_insight: uuid.UUID
    other_insight: uuid.UUID


def build_read_world(url: URL, target: Path) -> ReadWorld:
    migrate(url)
    engine = create_warehouse_engine(url)
    user, other = f"anna_{uuid.uuid4().hex[:6]}", f"ben_{uuid.uuid4().hex[:6]}"
    insights = [
        insight_row(user, "step_goal_streak", "active", "2024-04-29", "2024-05-01"),
        insight_row(user, "sleep_short", "resolved", "2024-04-20", "2024-04-22"),
        insight_row(other, "resting_hr_rising", "active", "2024-04-30", "2024-05-01"),
    ]
    with psycopg_connection(engine) as conn:
        create_user(conn, user, "Europe/Amsterdam")
        create_user(conn, other, "America/New_York")
        set_step_goal(conn, user, 8000)
        with conn.transaction():
            for day, metric, *values in DAILY:
                conn.execute(
                    """INSERT INTO marts.daily (user_id, local_date, metric, value, sum, count, min, max,
                       latest_value, latest_at, flagged_count) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                    (
                        user,
                        day,
                        metric,
                        *values[:5],
                        values[0],
                        dt.datetime.fromisoformat(day + " 20:00+00"),
                        values[5],
                    ),
                )
            conn.execute(  # the other user's one day: nothing of it may show in the first user's answers
                """INSERT INTO marts.daily (user_id, local_date, metric, value, sum, count, min, max, flagged_count)
                   VALUES (%s, '2024-05-01', 'STEPS', 12345, 12345, 7, 1, 5000, 0)""",
                (other,),
            )
            for local, utc, value, count in HOURLY:
                conn.execute(
                    """INSERT INTO marts.hourly (user_id, local_date, metric, local_hour, hour_start_utc, value,
                       sum, count, min, max, flagged_count)
                       VALUES (%s, '2024-05-01', 'STEPS', %s, %s, %s, %s, %s, 1, %s, 0)""",
                    (user, local, utc + "+00", value, value, count, value),
                )
            for source, device, raw, kept in SOURCE_TOTALS:
                conn.execute(
                    "INSERT INTO core.source_totals VALUES (%s, '2024-05-01', 'STEPS', %s, %s, %s, %s)",
                    (user, source, device, raw, kept),
                )
            conn.execute(
                "INSERT INTO core.source_totals VALUES (%s, '2024-05-01', 'STEPS', 'Other', 'phone', 99, 99)",
                (other,),
            )
            conn.execute(
                """INSERT INTO core.sleep_sessions (user_id, local_date, session_start_utc, session_end_utc,
                   asleep_minutes) VALUES (%s, '2024-05-01', '2024-04-30 22:00+00', '2024-05-01 05:00+00', 420)""",
                (user,),
            )
            for stage, start, end, minutes, won, day in SLEEP_SLICES:
                conn.execute(
                    """INSERT INTO core.slices (user_id, local_date, metric, stage, slice_start_utc, slice_end_utc,
                       local_hour, hour_start_utc, value, source_name, device_class, identity, won)
                       VALUES (%s, %s, 'SLEEP_ANALYSIS', %s, %s, %s, %s, %s, %s, 'Watch', 'watch', %s, %s)""",
                    (user, day, stage, start + "+00", end + "+00", start, start + "+00", minutes, uuid.uuid4(), won),
                )
            for row in insights:
                conn.execute(
                    """INSERT INTO marts.insights (insight_id, user_id, rule, severity, message, recommendation,
                       numbers, first_evaluated_day, last_evaluated_day, status, resolved_on)
                       VALUES (%(insight_id)s, %(user_id)s, %(rule)s, %(severity)s, %(message)s, %(recommendation)s,
                       %(numbers)s, %(first)s, %(last)s, %(status)s, %(resolved_on)s)""",
                    row,
                )
            conn.execute(
                """INSERT INTO core.partition_stats (user_id, local_date, raw_rows, rejected, accepted,
                   exact_duplicates, computed_at) VALUES (%s, '2024-05-01', 40, 2, 38, 0, '2024-05-02 00:01+00'),
                   (%s, '2024-05-02', 30, 0, 30, 0, '2024-05-02 23:59+00')""",
                (user, user),
            )
            conn.execute(
                """INSERT INTO app.ingest_batches (user_id, source, status, landed_count, finished_at)
                   VALUES (%s, 'ndjson', 'done', 70, '2024-05-02 21:04+00'),
                          (%s, 'ndjson', 'done', 5, '2024-05-03 08:00+00')""",
                (user, other),
            )
        keys = (create_api_key(conn, user), create_api_key(conn, other), create_api_key(conn, None, True))
    build_full(url, target)
    with psycopg_connection(engine) as conn:
        conn.execute(
            """INSERT INTO marts.health_scores VALUES (%s, '2024-05-01', 72.5, 60, 80, 77.5, 0.9, 12,
               '2024-05-02 00:05+00'), (%s, '2024-05-02', 81, 90, NULL, 72, 0.5, 12, '2024-05-03 00:05+00')""",
            (user, user),
        )
    return ReadWorld(
        engine,
        user,
        other,
        *keys,
        *(r["insight_id"] for r in insights),  # type: ignore[arg-type]
    )


def bearer(key: str) -> dict[str, str]:
    """The header that presents an API key."""
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def world(make_database: Callable[[], URL], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReadWorld]:
    """The read warehouse of this module (`build_read_world` on a database of its own)."""
    built = build_read_world(make_database(), tmp_path_factory.mktemp("dbt"))
    yield built
    built.engine.dispose()


@pytest.fixture(scope="module")
def client(world: ReadWorld) -> Iterator[TestClient]:
    """The app over the module's read warehouse."""
    with TestClient(create_app(world.engine)) as test_client:
        yield test_client
