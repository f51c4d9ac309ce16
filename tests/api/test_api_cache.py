"""ETags, 304 and the response cache of the read routes, with each store: this process's LRU and Redis.

Every test has a user of its own (rows written here by hand), so the two stores' runs do not see each other's writes.
A cached answer is told apart from a computed one by changing a marts row behind the API's back (no data version
advance): the cache keeps answering the old value until the version moves."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.cached_reads import SHAPES
from api.main import create_app
from api.response_cache import KEY_PREFIX, MemoryCache, RedisCache
from pipeline import data_version
from pipeline.accounts import create_api_key, set_step_goal
from pipeline.infra.database import psycopg_connection
from pipeline.infra.settings import Settings
from tests.support.helpers import new_user
from tests.support.redis_store import redis_prefix, redis_url_for_tests

ZONE = "Europe/Amsterdam"
STEPS = {"2024-05-01": 6000.0, "2024-05-02": 9000.0}


@dataclass(frozen=True)
class Person:
    user_id: str
    key: str
    insight_id: uuid.UUID

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture(scope="module", params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def client(engine: Engine, store: str) -> Iterator[TestClient]:
    if store == "memory":
        app = create_app(engine, Settings(redis_url=None))
        assert isinstance(app.state.response_cache, MemoryCache)
        with TestClient(app) as test_client:
            yield test_client
        return
    with redis_prefix() as (_, prefix):
        app = create_app(engine, Settings(redis_url=redis_url_for_tests()))
        cache = app.state.response_cache
        assert isinstance(cache, RedisCache) and cache.prefix == f"{KEY_PREFIX}{SHAPES}:"
        cache.prefix = prefix  # this module's keys only (deleted at the end)
        with TestClient(app) as test_client:
            yield test_client


@pytest.fixture
def person(engine: Engine) -> Person:
    """A user with STEPS on two days and one active insight."""
    user = new_user(engine, ZONE, prefix="cache")
    insight = uuid.uuid4()
    with psycopg_connection(engine) as conn:
        for day, steps in STEPS.items():
            conn.execute(
                """INSERT INTO marts.daily (user_id, local_date, metric, value, sum, count, min, max, flagged_count)
                   VALUES (%s, %s, 'STEPS', %s, %s, 10, 100, 1500, 0)""",
                (user, day, steps, steps),
            )
        conn.execute(
            """INSERT INTO marts.insights (insight_id, user_id, rule, severity, message, recommendation, numbers,
               first_evaluated_day, last_evaluated_day, status)
               VALUES (%s, %s, 'step_goal_streak', 'low', 'm', 'r', '{}', '2024-04-29', '2024-05-01', 'active')""",
            (insight, user),
        )
        key = create_api_key(conn, user)
    return Person(user, key, insight)


def summary(client: TestClient, person: Person, day: str | None, **headers: str):  # type: ignore[no-untyped-def]
    params = {"date": day} if day else {}
    return client.get("/v1/me/summary", params=params, headers={**person.auth, **headers})


def steps_of(answer) -> float:  # type: ignore[no-untyped-def]
    (steps,) = [m["value"] for m in answer.json()["metrics"] if m["metric"] == "STEPS"]
    return float(steps)


def test_a_read_carries_a_weak_etag_and_if_none_match_naming_it_answers_304_without_a_body(
    client: TestClient, person: Person
) -> None:
    first = summary(client, person, "2024-05-01")
    assert first.status_code == 200 and steps_of(first) == 6000.0
    etag = first.headers["etag"]
    assert etag.startswith('W/"') and etag.endswith('"') and len(etag) == 36
    assert first.headers["cache-control"] == "private, no-cache"
    strong_form = etag.removeprefix("W/")
    for header in (etag, strong_form, f'"elsewhere", {etag}', f'W/"x",{strong_form}', "*"):
        again = summary(client, person, "2024-05-01", **{"If-None-Match": header})
        assert again.status_code == 304, header
        assert again.content == b""
        assert again.headers["etag"] == etag and again.headers["cache-control"] == "private, no-cache"
    for header in ('"elsewhere"', etag[:-2] + '"', "not-an-etag", f"{etag} trailing"):
        full = summary(client, person, "2024-05-01", **{"If-None-Match": header})
        assert full.status_code == 200, header
        assert full.content == first.content and full.headers["etag"] == etag


def test_the_etag_follows_the_route_its_parameters_and_the_resolved_default_day(
    client: TestClient, person: Person, engine: Engine
) -> None:
    one, two = summary(client, person, "2024-05-01"), summary(client, person, "2024-05-02")
    assert (steps_of(one), steps_of(two)) == (6000.0, 9000.0)
    assert one.headers["etag"] != two.headers["etag"]

    # no date: the user's local today, resolved before the key: the same answer and ETag as that date named
    zone = zoneinfo.ZoneInfo(ZONE)
    before = dt.datetime.now(zone).date()
    default = summary(client, person, None)
    after = dt.datetime.now(zone).date()
    today = default.json()["date"]
    assert today in {before.isoformat(), after.isoformat()}
    named = summary(client, person, today)
    assert named.headers["etag"] == default.headers["etag"] and named.content == default.content
    assert default.headers["etag"] not in (one.headers["etag"], two.headers["etag"])

    def aggregates(types: str, **extra: str):  # type: ignore[no-untyped-def]
        params = {"types": types, "start": "2024-05-01", "end": "2024-05-02", **extra}
        return client.get("/v1/me/aggregates", params=params, headers=person.auth)

    steps_only = aggregates("STEPS")
    assert [p["value"] for p in steps_only.json()["types"]["STEPS"]["points"]] == [6000.0, 9000.0]
    # the same question asked differently: the same ETag (types normalized, defaults resolved, unknown keys ignored)
    for same in (aggregates(" STEPS,STEPS"), aggregates("STEPS", period="day"), aggregates("STEPS", other="x")):
        assert same.headers["etag"] == steps_only.headers["etag"] and same.content == steps_only.content
    others = {
        aggregates("STEPS,HEART_RATE").headers["etag"],
        aggregates("HEART_RATE,STEPS").headers["etag"],  # the answer lists the types in the order asked
        aggregates("STEPS", period="week").headers["etag"],
        client.get(
            "/v1/me/health-scores", params={"start": "2024-05-01", "end": "2024-05-02"}, headers=person.auth
        ).headers["etag"],
        client.get("/v1/me/sources", params={"date": "2024-05-01"}, headers=person.auth).headers["etag"],
        client.get("/v1/me/insights", headers=person.auth).headers["etag"],
        client.get("/v1/me/insights", params={"status": "all"}, headers=person.auth).headers["etag"],
        one.headers["etag"],
    }
    assert steps_only.headers["etag"] not in others and len(others) == 8

    # an admin reading the same user under /v1/users/{id}: the same answer, the same ETag
    with psycopg_connection(engine) as conn:
        admin = create_api_key(conn, None, is_admin=True)
    as_admin = client.get(
        f"/v1/users/{person.user_id}/summary",
        params={"date": "2024-05-01"},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert as_admin.headers["etag"] == one.headers["etag"] and as_admin.content == one.content


def test_acknowledging_an_insight_moves_the_etag_and_the_next_read_shows_it(client: TestClient, person: Person) -> None:
    before = client.get("/v1/me/insights", headers=person.auth)
    assert [(i["id"], i["acknowledged"]) for i in before.json()] == [(str(person.insight_id), False)]
    day_before = summary(client, person, "2024-05-01")

    acknowledged = client.post(f"/v1/me/insights/{person.insight_id}/acknowledge", headers=person.auth)
    assert acknowledged.status_code == 200 and acknowledged.json()["acknowledged"] is True

    after = client.get("/v1/me/insights", headers={**person.auth, "If-None-Match": before.headers["etag"]})
    assert after.status_code == 200 and after.headers["etag"] != before.headers["etag"]
    assert [(i["id"], i["acknowledged"]) for i in after.json()] == [(str(person.insight_id), True)]
    assert summary(client, person, "2024-05-01").headers["etag"] != day_before.headers["etag"]  # every answer's

    # acknowledging again changes nothing: the ETag stays
    assert client.post(f"/v1/me/insights/{person.insight_id}/acknowledge", headers=person.auth).status_code == 200
    same = client.get("/v1/me/insights", headers={**person.auth, "If-None-Match": after.headers["etag"]})
    assert same.status_code == 304


def test_a_repeated_read_is_served_from_the_cache_until_the_data_version_moves(
    client: TestClient, person: Person, engine: Engine
) -> None:
    first = summary(client, person, "2024-05-01")
    assert steps_of(first) == 6000.0
    with psycopg_connection(engine) as conn:  # behind the API's back: no advance
        conn.execute(
            "UPDATE marts.daily SET value = 7777 WHERE user_id = %s AND local_date = '2024-05-01'", (person.user_id,)
        )
    cached = summary(client, person, "2024-05-01")
    assert steps_of(cached) == 6000.0 and cached.content == first.content
    assert cached.headers["etag"] == first.headers["etag"]
    with psycopg_connection(engine) as conn:
        data_version.advance(conn, [person.user_id])
    fresh = summary(client, person, "2024-05-01", **{"If-None-Match": first.headers["etag"]})
    assert fresh.status_code == 200 and steps_of(fresh) == 7777.0
    assert fresh.headers["etag"] != first.headers["etag"]


def test_a_new_step_goal_shows_in_the_next_summary(client: TestClient, person: Person, engine: Engine) -> None:
    def goal() -> float:
        answer = summary(client, person, "2024-05-01")
        (steps,) = [m for m in answer.json()["metrics"] if m["metric"] == "STEPS"]
        return float(steps["goal"])

    assert goal() == 10_000.0  # the catalogue's
    with psycopg_connection(engine) as conn:
        set_step_goal(conn, person.user_id, 6000)
    assert goal() == 6000.0


def test_a_bad_parameter_is_refused_before_any_etag_is_compared(client: TestClient, person: Person) -> None:
    answer = client.get(
        "/v1/me/aggregates",
        params={"types": "NOPE", "start": "2024-05-01", "end": "2024-05-02"},
        headers={**person.auth, "If-None-Match": "*"},
    )
    assert answer.status_code == 422 and "unknown type(s) 'NOPE'" in answer.json()["detail"]
    assert "etag" not in answer.headers


def test_the_store_holds_the_answers_bytes_after_its_record_count(
    client: TestClient, person: Person, store: str
) -> None:
    answer = summary(client, person, "2024-05-02")
    digest = answer.headers["etag"][3:-1]
    cache = client.app.state.response_cache  # type: ignore[attr-defined]
    records = len(answer.json()["metrics"])
    assert cache.get(digest) == records.to_bytes(4, "big") + answer.content
    if store == "redis":  # kept with the TTL
        ttl = redis.Redis.from_url(redis_url_for_tests()).ttl(cache.prefix + digest)
        assert 0 < ttl <= Settings().api_cache_ttl_seconds


def test_redis_unreachable_answers_from_the_database_and_logs_once_without_the_url(
    engine: Engine, person: Person, caplog: pytest.LogCaptureFixture
) -> None:
    url = "redis://:hunter2@127.0.0.1:1/0"  # nothing listens on port 1
    app = create_app(engine, Settings(redis_url=url))
    assert isinstance(app.state.response_cache, RedisCache)
    with caplog.at_level(logging.WARNING, logger="api.response_cache"), TestClient(app) as test_client:
        answers = [summary(test_client, person, day) for day in ("2024-05-01", "2024-05-02", "2024-05-01")]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [steps_of(a) for a in answers] == [6000.0, 9000.0, 6000.0]
    warnings = [r.getMessage() for r in caplog.records if r.name == "api.response_cache"]
    assert len(warnings) == 1 and "Redis failed (ConnectionError)" in warnings[0]
    assert "hunter2" not in warnings[0] and "127.0.0.1" not in warnings[0]


def test_fhir_and_profile_answers_carry_etags_cached_until_the_profile_changes(
    client: TestClient, person: Person
) -> None:
    patient = client.get("/v1/me/fhir/Patient", headers=person.auth)
    assert patient.status_code == 200 and patient.headers["content-type"] == "application/fhir+json"
    assert patient.json()["gender"] == "unknown" and patient.headers["ETag"].startswith('W/"')
    same = client.get("/v1/me/fhir/Patient", headers={**person.auth, "If-None-Match": patient.headers["ETag"]})
    assert same.status_code == 304 and same.content == b""
    bundle = client.get(
        "/v1/me/fhir/Observation", params={"start": "2024-05-01", "end": "2024-05-02"}, headers=person.auth
    )
    values = sorted(e["resource"]["valueQuantity"]["value"] for e in bundle.json()["entry"])
    assert values == sorted(STEPS.values()) and bundle.headers["ETag"] != patient.headers["ETag"]
    profile = client.get("/v1/me/profile", headers=person.auth)
    assert profile.json()["gender"] is None
    assert client.patch("/v1/me/profile", json={"gender": "female"}, headers=person.auth).status_code == 200
    changed = client.get("/v1/me/fhir/Patient", headers={**person.auth, "If-None-Match": patient.headers["ETag"]})
    assert changed.status_code == 200 and changed.json()["gender"] == "female"
    assert client.get("/v1/me/profile", headers=person.auth).json()["gender"] == "female"
