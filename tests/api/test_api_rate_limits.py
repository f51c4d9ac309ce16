"""Rate limits: per API key on every keyed route and per client address on public routes; 429 with Retry-After and
a body naming the limit; counted in this process or in Redis (shared by every app on it); a Redis that does not
answer lets requests through.

The Redis tests use ``HEALTHPIPE_TEST_REDIS_URL`` (default redis://127.0.0.1:6379/15), each under a namespace of
its own, and delete only that namespace's keys."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from api.rate_counters import InProcessCounters, RedisCounters
from api.rate_limits import WINDOW_SECONDS, RateLimits, install_rate_limits, limit_per_client
from pipeline.accounts import create_api_key, hash_key
from pipeline.infra.database import psycopg_connection
from pipeline.infra.settings import Settings
from tests.support.helpers import new_user

REDIS_URL = os.environ.get("HEALTHPIPE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
NOW = 1_800_000_000.0 + 15.5  # 15.5 s into a window (1,800,000,000 is a multiple of 60)


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def redis_namespace() -> Iterator[str]:
    """A namespace of the test Redis for one test; its keys are deleted afterwards."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {REDIS_URL} (HEALTHPIPE_TEST_REDIS_URL)")
    namespace = f"healthpipe-test:{uuid.uuid4().hex[:12]}"
    yield namespace
    for key in client.scan_iter(match=f"{namespace}:*"):
        client.delete(key)
    client.close()


def keyed_user(engine: Engine) -> tuple[str, dict[str, str]]:
    user = new_user(engine)
    with psycopg_connection(engine) as conn:
        key = create_api_key(conn, user)
    return key, {"Authorization": f"Bearer {key}"}


def app_with(engine: Engine, store: str, namespace: str | None, per_key: int, per_client: int = 60) -> FastAPI:
    """The real app, its limits counted in this process or in the test Redis under ``namespace``."""
    settings = Settings(
        api_rate_limit_per_minute=per_key,
        api_public_rate_limit_per_minute=per_client,
        redis_url=REDIS_URL if store == "redis" else None,
    )
    app = create_app(engine, settings)
    if store == "redis":
        assert namespace is not None
        app.state.rate_limits = RateLimits.from_settings(settings, namespace=namespace)
    app.state.rate_limits.clock = Clock()
    return app


@pytest.fixture(params=["in-process", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[tuple[str, str | None]]:
    if request.param == "redis":
        yield "redis", request.getfixturevalue("redis_namespace")
    else:
        yield "in-process", None


def test_a_key_over_its_limit_gets_429_with_retry_after_until_the_window_ends(
    engine: Engine, store: tuple[str, str | None]
) -> None:
    _, headers = keyed_user(engine)
    app = app_with(engine, *store, per_key=3)
    with TestClient(app) as client:
        answers = [client.get("/v1/me", headers=headers) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        refused = answers[-1]
        assert refused.headers["Retry-After"] == "45"  # 15.5 s into the 60 s window: 44.5 s left, rounded up
        assert refused.json() == {
            "detail": "rate limit of 3 requests per minute per API key exceeded "
            "(HEALTHPIPE_API_RATE_LIMIT_PER_MINUTE); retry after 45 s",
            "limit": 3,
            "windowSeconds": 60,
        }
        assert client.get("/v1/me/devices", headers=headers).status_code == 429  # every keyed route, one count
        _, other_headers = keyed_user(engine)
        assert client.get("/v1/me", headers=other_headers).status_code == 200  # counted per key

        app.state.rate_limits.clock.now = NOW + 44.5  # the next window
        assert client.get("/v1/me", headers=headers).status_code == 200


def test_limits_are_counted_by_key_hash_in_redis_never_the_clear_key(engine: Engine, redis_namespace: str) -> None:
    key, headers = keyed_user(engine)
    with TestClient(app_with(engine, "redis", redis_namespace, per_key=10)) as client:
        for _ in range(2):
            assert client.get("/v1/me", headers=headers).status_code == 200
    stored = redis.Redis.from_url(REDIS_URL)
    names = [name.decode() for name in stored.scan_iter(match=f"{redis_namespace}:*")]
    window = int(NOW // WINDOW_SECONDS)
    assert names == [f"{redis_namespace}:key:{hash_key(key).hex()[:32]}:{window}"]
    assert stored.get(names[0]) == b"2"
    assert 0 < stored.ttl(names[0]) <= 2 * WINDOW_SECONDS  # expires on its own
    assert not any(key in name or key[:11] in name for name in names)


def test_two_apps_on_one_redis_share_one_count(engine: Engine, redis_namespace: str) -> None:
    """What several API workers do: each its own process and app, one Redis."""
    _, headers = keyed_user(engine)
    first = app_with(engine, "redis", redis_namespace, per_key=3)
    second = app_with(engine, "redis", redis_namespace, per_key=3)
    with TestClient(first) as one, TestClient(second) as two:
        assert one.get("/v1/me", headers=headers).status_code == 200
        assert two.get("/v1/me", headers=headers).status_code == 200
        assert one.get("/v1/me", headers=headers).status_code == 200
        assert two.get("/v1/me", headers=headers).status_code == 429
        assert one.get("/v1/me", headers=headers).status_code == 429


def test_in_process_apps_count_apart(engine: Engine) -> None:
    _, headers = keyed_user(engine)
    with (
        TestClient(app_with(engine, "in-process", None, 1)) as one,
        TestClient(app_with(engine, "in-process", None, 1)) as two,
    ):
        assert one.get("/v1/me", headers=headers).status_code == 200
        assert two.get("/v1/me", headers=headers).status_code == 200
        assert one.get("/v1/me", headers=headers).status_code == 429


def test_a_key_is_counted_before_it_is_looked_up(unreachable_engine: Engine) -> None:
    """Over the limit, a request is refused without a database: 429, not the outage's 503."""
    headers = {"Authorization": "Bearer hp_unknown_key"}
    with TestClient(app_with(unreachable_engine, "in-process", None, per_key=1)) as client:
        assert client.get("/v1/me", headers=headers).status_code == 503
        assert client.get("/v1/me", headers=headers).status_code == 429


def test_zero_means_no_limit(engine: Engine) -> None:
    _, headers = keyed_user(engine)
    with TestClient(app_with(engine, "in-process", None, per_key=0)) as client:
        assert {client.get("/v1/me", headers=headers).status_code for _ in range(5)} == {200}


def test_a_redis_that_does_not_answer_lets_requests_through_and_is_logged_once(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    _, headers = keyed_user(engine)
    settings = Settings(api_rate_limit_per_minute=1, redis_url="redis://:s3cret-pw@127.0.0.1:1/0")
    with TestClient(create_app(engine, settings)) as client, caplog.at_level(logging.WARNING, "api.rate_limits"):
        assert [client.get("/v1/me", headers=headers).status_code for _ in range(3)] == [200, 200, 200]
    lines = [r.getMessage() for r in caplog.records if r.name == "api.rate_limits"]
    assert lines == [
        "rate limits: Redis did not answer (redis.exceptions.ConnectionError); requests are not counted until it does"
    ]
    assert "s3cret-pw" not in caplog.text


def test_redis_counting_resumes_when_it_answers_again(redis_namespace: str, caplog: pytest.LogCaptureFixture) -> None:
    counters = RedisCounters(redis.Redis.from_url(REDIS_URL), redis_namespace)
    counters._down, counters._down_until = True, 0.0  # as after an outage, past its back-off
    with caplog.at_level(logging.WARNING, "api.rate_limits"):
        assert counters.increment("n", 7, 120) == 1
        assert counters.increment("n", 7, 120) == 2
    assert [r.getMessage() for r in caplog.records] == ["rate limits: Redis answers again; requests are counted again"]


def public_app(store: str, namespace: str | None, per_client: int) -> FastAPI:
    """A test app with one public route limited per client address, as the share route is."""
    app = FastAPI()
    settings = Settings(api_public_rate_limit_per_minute=per_client, redis_url=REDIS_URL if store == "redis" else None)
    install_rate_limits(app, settings)
    if namespace is not None:
        app.state.rate_limits = RateLimits.from_settings(settings, namespace=namespace)
    app.state.rate_limits.clock = Clock()

    @app.get("/public", dependencies=[Depends(limit_per_client)])
    def public() -> dict[str, Any]:
        return {"ok": True}

    return app


def test_a_public_route_is_limited_per_client_address(store: tuple[str, str | None]) -> None:
    app = public_app(*store, per_client=2)
    with (
        TestClient(app, client=("198.51.100.7", 50000)) as client,
        TestClient(app, client=("198.51.100.8", 50000)) as other,
    ):
        answers = [client.get("/public") for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert answers[-1].headers["Retry-After"] == "45"
        assert answers[-1].json() == {
            "detail": "rate limit of 2 requests per minute per client address exceeded "
            "(HEALTHPIPE_API_PUBLIC_RATE_LIMIT_PER_MINUTE); retry after 45 s",
            "limit": 2,
            "windowSeconds": 60,
        }
        assert other.get("/public").status_code == 200


def test_client_addresses_are_counted_hashed(redis_namespace: str) -> None:
    with TestClient(public_app("redis", redis_namespace, 5), client=("198.51.100.7", 50000)) as client:
        assert client.get("/public").status_code == 200
    names = [n.decode() for n in redis.Redis.from_url(REDIS_URL).scan_iter(match=f"{redis_namespace}:*")]
    assert len(names) == 1 and names[0].startswith(f"{redis_namespace}:client:")
    assert "198.51.100.7" not in names[0]


def test_the_in_process_counters_are_bounded_and_start_again_each_window() -> None:
    counters = InProcessCounters(max_names=2)
    assert [counters.increment(name, 1, 120) for name in ("a", "a", "b", "c")] == [1, 2, 1, 1]
    assert counters.increment("a", 1, 120) == 1  # the oldest name was forgotten to make room for "c"
    assert counters.increment("c", 1, 120) == 2
    assert counters.increment("c", 2, 120) == 1  # a new window
    assert counters.increment("c", 1, 120) == 2  # a late reading of the clock counts in the current window


def test_every_keyed_operation_documents_the_429() -> None:
    schema = create_app(engine=None).openapi()
    keyed = [
        (path, method, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if operation.get("security")
    ]
    assert len(keyed) >= 10
    for path, method, operation in keyed:
        documented = operation["responses"].get("429")
        assert documented is not None, f"{method.upper()} {path}"
        assert "Retry-After" in documented["headers"]
        assert documented["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/RateLimitProblem"}
    assert set(schema["components"]["schemas"]["RateLimitProblem"]["required"]) == {"detail", "limit", "windowSeconds"}


def test_the_share_link_route_is_limited_per_client_address(engine: Engine, store: tuple[str, str | None]) -> None:
    """Guessing share codes: the public route answers its 404 until the client's limit, then 429 for that client."""
    app = app_with(engine, *store, per_key=100, per_client=2)
    code = "x" * 32  # shaped like a code, matching none
    with (
        TestClient(app, client=("198.51.100.9", 50000)) as client,
        TestClient(app, client=("198.51.100.10", 50000)) as other,
    ):
        answers = [client.get(f"/v1/shared/{code}") for _ in range(3)]
        assert [a.status_code for a in answers] == [404, 404, 429]
        assert answers[-1].headers["Retry-After"] == "45"
        assert other.get(f"/v1/shared/{code}").status_code == 404
