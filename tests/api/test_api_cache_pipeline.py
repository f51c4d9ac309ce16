"""The response cache invalidated by real pipeline writes, with each store: a read, new samples landed for the user's
day, a range run over it (samples, hourly, daily and the dbt marts), and the next read shows the new value; the
insights and health score runs move the user's ETags too."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from api.main import create_app
from api.response_cache import MemoryCache, RedisCache
from pipeline import data_version
from pipeline.accounts import create_api_key
from pipeline.infra.database import create_warehouse_engine, psycopg_connection
from pipeline.infra.migrations import migrate
from pipeline.infra.settings import Settings
from pipeline.insights.evaluate import evaluate_days
from pipeline.scores.compute import score_range
from tests.support.helpers import land_samples, new_user
from tests.support.range_run import execute_range
from tests.support.redis_store import redis_prefix, redis_url_for_tests

pytestmark = pytest.mark.slow
DAY = dt.date(2024, 5, 1)  # a Wednesday: its week starts on Monday 29 April


def steps(value: int, hour: int) -> tuple[object, ...]:
    start = f"2024-05-01 {hour:02d}:00"
    return ("STEPS", value, "count", None, start, f"2024-05-01 {hour:02d}:10", "Watch", "watch")


@pytest.fixture(scope="module")
def warehouse(make_database: Callable[[], URL]) -> Iterator[tuple[URL, Engine]]:
    url = make_database()
    migrate(url)
    engine = create_warehouse_engine(url)
    with pytest.MonkeyPatch.context() as patch:  # the Dagster resources find the warehouse by the settings
        patch.setenv("HEALTHPIPE_DATABASE_URL", url.render_as_string(hide_password=False))
        yield url, engine
    engine.dispose()


def run_pipeline(user: str) -> None:
    results = execute_range([user], DAY, DAY, marts=True)
    assert all(result.success for result in results)


def test_a_pipeline_run_over_the_users_day_shows_in_the_next_read_from_either_store(
    warehouse: tuple[URL, Engine],
) -> None:
    url, engine = warehouse
    user = new_user(engine, "UTC", prefix="piped")
    with psycopg_connection(engine) as conn:
        auth = {"Authorization": f"Bearer {create_api_key(conn, user)}"}
    land_samples(engine, user, [steps(1000, 8)])
    run_pipeline(user)

    in_process = create_app(engine, Settings(redis_url=None))
    shared = create_app(engine, Settings(redis_url=redis_url_for_tests()))
    assert isinstance(in_process.state.response_cache, MemoryCache)
    assert isinstance(shared.state.response_cache, RedisCache)
    with redis_prefix() as (_, prefix), TestClient(in_process) as memory, TestClient(shared) as redis_backed:
        shared.state.response_cache.prefix = prefix
        clients = (memory, redis_backed)

        def read(client: TestClient) -> tuple[float, float, str, str]:
            day = client.get("/v1/me/summary", params={"date": str(DAY)}, headers=auth)
            week = client.get(
                "/v1/me/aggregates",
                params={"types": "STEPS", "period": "week", "start": str(DAY), "end": str(DAY)},
                headers=auth,
            )
            (daily,) = [m["value"] for m in day.json()["metrics"] if m["metric"] == "STEPS"]
            (weekly,) = [p["value"] for p in week.json()["types"]["STEPS"]["points"]]
            return daily, weekly, day.headers["etag"], week.headers["etag"]

        first = [read(client) for client in clients]
        assert [answer[:2] for answer in first] == [(1000.0, 1000.0)] * 2
        assert [read(client) for client in clients] == first  # again: the same answers (cached)
        land_samples(engine, user, [steps(500, 12)])
        run_pipeline(user)
        after = [read(client) for client in clients]
        assert [answer[:2] for answer in after] == [(1500.0, 1500.0)] * 2
        for old, new in zip(first, after, strict=True):
            assert new[2] != old[2] and new[3] != old[3]

        # the insights run (every user) moves the user's ETags
        before = version(engine, user)
        evaluate_days(url, DAY, DAY)
        assert version(engine, user) == before + 1
        assert [read(client)[2] for client in clients] != [answer[2] for answer in after]

        # the score run replaces the day's scores: a score of the user's left from before (one user alone has no
        # cohort to be scored in) goes, and the next read shows it gone
        with psycopg_connection(engine) as conn:
            conn.execute(
                "INSERT INTO marts.health_scores VALUES (%s, %s, 50, 50, NULL, NULL, 0.5, 3, now())", (user, DAY)
            )
        scores = {"start": str(DAY), "end": str(DAY)}
        for client in clients:
            assert [s["score"] for s in client.get("/v1/me/health-scores", params=scores, headers=auth).json()] == [50]
        before = version(engine, user)
        score_range(url, DAY, DAY)
        assert version(engine, user) == before + 1
        for client in clients:
            assert client.get("/v1/me/health-scores", params=scores, headers=auth).json() == []


def version(engine: Engine, user: str) -> int:
    with psycopg_connection(engine) as conn:
        return data_version.current(conn, user)
