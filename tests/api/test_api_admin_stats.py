"""GET /v1/admin/stats on a warehouse of hand-written rows: every figure computed by hand; admin keys only."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from api.main import create_app
from pipeline.accounts import create_api_key, create_user
from pipeline.infra.database import create_warehouse_engine, psycopg_connection
from pipeline.infra.migrations import migrate


@pytest.fixture(scope="module")
def warehouse(make_database: Callable[[], URL]) -> Iterator[Engine]:
    url = make_database()
    migrate(url)
    engine = create_warehouse_engine(url)
    with psycopg_connection(engine) as conn, conn.transaction():
        for user in ("u1", "u2"):
            create_user(conn, user)
        # 3 user-days of 2 users, 200 raw rows; u1 last computed at 12:00, u2 at 09:00
        conn.execute(
            """INSERT INTO core.partition_stats (user_id, local_date, raw_rows, rejected, accepted, exact_duplicates,
               computed_at) VALUES ('u1', '2024-05-01', 40, 0, 40, 0, '2024-05-03 10:00+00'),
               ('u1', '2024-05-02', 60, 4, 56, 0, '2024-05-03 12:00+00'),
               ('u2', '2024-05-01', 100, 1, 99, 0, '2024-05-03 09:00+00')"""
        )
        conn.execute(
            """INSERT INTO core.rejections (user_id, local_date, identity, metric, reason)
               SELECT 'u1', date '2024-05-02', gen_random_uuid(), 'STEPS', 'above the hard maximum'
               FROM generate_series(1, 4)
               UNION ALL SELECT 'u2', date '2024-05-01', gen_random_uuid(), 'WEIGHT', 'below the hard minimum'"""
        )
        # 200 records read: u1's batch (finished before u1's last computation), u2's (after u2's: waiting since
        # 10:00) and a batch of several users (after every computation: waiting)
        conn.execute(
            """INSERT INTO app.ingest_batches (user_id, source, status, read_count, landed_count, finished_at)
               VALUES ('u1', 'ndjson', 'done', 100, 90, '2024-05-03 11:00+00'),
                      ('u2', 'device_sync', 'done', 100, 5, '2024-05-03 10:00+00'),
                      (NULL, 'synthetic', 'done', 0, 10, '2024-05-03 13:00+00'),
                      ('u1', 'ndjson', 'running', 0, 0, NULL)"""
        )
        conn.execute(
            """INSERT INTO raw.quarantine (batch_id, user_id, reason, payload_chunk, payload_slot)
               SELECT 1, 'u1', 'unknown type', gen_random_uuid(), 0 FROM generate_series(1, 3)
               UNION ALL SELECT 2, 'u2', 'bad date', gen_random_uuid(), 0"""
        )
        conn.execute(
            """INSERT INTO marts.insights (insight_id, user_id, rule, severity, message, recommendation, numbers,
               first_evaluated_day, last_evaluated_day, status, updated_at) VALUES (gen_random_uuid(), 'u1', 'r',
               'low', 'm', 'r', '{}', '2024-05-01', '2024-05-02', 'active', '2024-05-03 12:30+00')"""
        )
    yield engine
    engine.dispose()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_admin_stats_figures(warehouse: Engine) -> None:
    with psycopg_connection(warehouse) as conn:
        admin, user = create_api_key(conn, None, True), create_api_key(conn, "u1")
    with TestClient(create_app(warehouse)) as client:
        before = dt.datetime.now(dt.UTC)
        answer = client.get("/v1/admin/stats", headers=auth(admin))
        after = dt.datetime.now(dt.UTC)
        assert client.get("/v1/admin/stats", headers=auth(user)).status_code == 403
        assert client.get("/v1/admin/stats").status_code == 401
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["assets"] == [
        {"asset": "deduplicated_samples", "table": "core.partition_stats", "lastComputedAt": "2024-05-03T12:00:00Z"},
        {"asset": "insights", "table": "marts.insights", "lastComputedAt": "2024-05-03T12:30:00Z"},
        {"asset": "health_scores", "table": "marts.health_scores", "lastComputedAt": None},
    ]
    assert (body["userDays"], body["users"]) == (3, 2)
    assert body["rejections"] == [
        {"stage": "landing", "reason": "unknown type", "count": 3, "rate": 3 / 200},
        {"stage": "landing", "reason": "bad date", "count": 1, "rate": 1 / 200},
        {"stage": "validation", "reason": "above the hard maximum", "count": 4, "rate": 4 / 200},
        {"stage": "validation", "reason": "below the hard minimum", "count": 1, "rate": 1 / 200},
    ]
    lag = body["ingestLag"]
    assert (lag["waitingBatches"], lag["oldestWaitingSince"]) == (2, "2024-05-03T10:00:00Z")
    oldest = dt.datetime(2024, 5, 3, 10, tzinfo=dt.UTC)
    assert (before - oldest).total_seconds() - 1 <= lag["lagSeconds"] <= (after - oldest).total_seconds() + 1
