"""The audit trail of the read API: every GET route that reads a user's data writes exactly one app.audit_log row
per request (found by walking the app's routes, so a new route cannot be left out), cache hits and 304s included,
with the key or share that read, whose data, the route's template, the status and the records; never the code."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.audit import UNAUDITED_ROUTES, AuditBuffer
from api.main import create_app
from api.queries.read_state import authenticated
from pipeline.accounts import create_api_key
from pipeline.audit.entries import AuditEntry, entries_of, forget_user, record
from pipeline.infra.database import psycopg_connection
from pipeline.infra.settings import Settings
from tests.support.helpers import new_user
from tests.support.read_api import ReadWorld, bearer

DAY = "2024-05-01"
# the required query parameters of the read routes, by name
QUERY = {"start": "2024-05-01", "end": "2024-05-02", "types": "STEPS"}


@pytest.fixture(scope="module")
def audited(world: ReadWorld) -> Iterator[TestClient]:
    """The app over the read world, its event streams short so that sync-status is a read like the others."""
    settings = Settings(sync_status_max_seconds=0.2, sync_status_poll_seconds=0.1)
    with TestClient(create_app(world.engine, settings)) as test_client:
        yield test_client


def flush(client: TestClient) -> None:
    client.app.state.audit.flush()  # type: ignore[attr-defined]


def audit_rows(engine: Engine, since: int) -> list[dict[str, Any]]:
    with psycopg_connection(engine) as conn, conn.cursor() as cursor:
        cursor.execute(
            """SELECT audit_id, channel, key_id, share_id, user_id, route, method, status, records
               FROM app.audit_log WHERE audit_id > %s ORDER BY audit_id""",
            (since,),
        )
        names = [column.name for column in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def last_id(engine: Engine) -> int:
    with psycopg_connection(engine) as conn:
        row = conn.execute("SELECT coalesce(max(audit_id), 0) FROM app.audit_log").fetchone()
    assert row is not None
    return int(row[0])


def key_id(engine: Engine, key: str) -> int:
    with psycopg_connection(engine) as conn:
        found = authenticated(conn, key)
    assert found is not None
    return found.principal.key_id


def read_routes(client: TestClient) -> dict[str, set[str]]:
    """Every GET route of the versioned API, as its template, with its required query parameters: from the OpenAPI
    document, which lists every route the app serves (the dashboard's files and the docs aside)."""
    paths = client.get("/openapi.json").json()["paths"]
    return {
        path: {p["name"] for p in item["get"].get("parameters", []) if p["in"] == "query" and p.get("required")}
        for path, item in paths.items()
        if "get" in item and path.startswith("/v1/")
    }


def test_every_read_route_writes_one_row_per_request_with_who_whose_and_how_many(
    audited: TestClient, world: ReadWorld
) -> None:
    code = audited.post(
        "/v1/me/shares",
        json={"recipient": "Dr. Jansen", "types": ["STEPS"], "start": "2024-05-01", "end": "2024-05-02"},
        headers=bearer(world.user_key),
    ).json()["code"]
    share_id = uuid.UUID(audited.get("/v1/me/shares", headers=bearer(world.user_key)).json()[0]["id"])
    flush(audited)
    since = last_id(world.engine)
    user_key, admin_key = key_id(world.engine, world.user_key), key_id(world.engine, world.admin_key)

    walked = read_routes(audited)
    routes = [path for path in walked if path not in UNAUDITED_ROUTES]
    expected: dict[str, tuple[str, int | None, uuid.UUID | None, str | None]] = {}
    for path in routes:
        url = path.replace("{user_id}", world.user).replace("{code}", code)
        names = set(re.findall(r"{(\w+)}", url))
        assert not names, f"{path}: no value for {names}; add one here"
        params = {name: QUERY[name] for name in walked[path]}
        if path.startswith("/v1/shared/"):
            headers, expected[path] = {}, ("share", None, share_id, world.user)
        elif path.startswith(("/v1/users/", "/v1/admin/")):
            who = world.user if "{user_id}" in path else None
            headers, expected[path] = bearer(world.admin_key), ("api", admin_key, None, who)
        else:
            headers, expected[path] = bearer(world.user_key), ("api", user_key, None, world.user)
        answer = audited.get(url, params=params, headers=headers)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:200])
    flush(audited)

    rows = audit_rows(world.engine, since)
    assert sorted(row["route"] for row in rows) == sorted(expected)  # one row each, no more
    for row in rows:
        assert (row["channel"], row["key_id"], row["share_id"], row["user_id"]) == expected[row["route"]]
        assert (row["method"], row["status"]) == ("GET", 200)
    assert {"/v1/me/export", "/v1/me/audit", "/v1/shared/{code}", "/v1/admin/stats"} <= set(expected)
    assert len(routes) >= 25  # summary ... FHIR, under /me and /users/{user_id}; the walk found them
    records = {row["route"]: row["records"] for row in rows}
    # read_api.DAILY: 2024-05-01 holds STEPS, HEART_RATE, ACTIVE_ENERGY and sleep; STEPS on 05-01 and 05-02
    assert records["/v1/me/summary"] == 0 and records["/v1/users/{user_id}/summary"] == 0  # today: no data yet
    assert records["/v1/me/aggregates"] == 2 and records["/v1/users/{user_id}/aggregates"] == 2
    assert records["/v1/shared/{code}"] == 2 and records["/v1/me/profile"] == 1 and records["/v1/me"] == 1
    assert records["/v1/me/health-scores"] == 2  # 72.5 on 05-01, 81 on 05-02
    assert records["/v1/me/fhir/Observation"] == 6  # every type (types is optional): 4 on 05-01, 2 on 05-02


def test_a_cache_hit_and_a_304_are_reads_too(audited: TestClient, world: ReadWorld) -> None:
    since = last_id(world.engine)
    url = f"/v1/me/summary?date={DAY}"
    first = audited.get(url, headers=bearer(world.user_key))
    again = audited.get(url, headers=bearer(world.user_key))  # from the response cache
    revalidated = audited.get(url, headers={**bearer(world.user_key), "If-None-Match": first.headers["etag"]})
    assert (first.status_code, again.status_code, revalidated.status_code) == (200, 200, 304)
    flush(audited)
    rows = audit_rows(world.engine, since)
    metrics = len(first.json()["metrics"])
    assert metrics == 4  # STEPS, HEART_RATE, ACTIVE_ENERGY, SLEEP_ANALYSIS on 2024-05-01
    assert [(r["route"], r["status"], r["records"]) for r in rows] == [
        ("/v1/me/summary", 200, metrics),
        ("/v1/me/summary", 200, metrics),
        ("/v1/me/summary", 304, 0),
    ]


def test_requests_that_read_nothing_leave_no_row_and_a_refused_read_is_kept_with_its_status(
    audited: TestClient, world: ReadWorld
) -> None:
    since = last_id(world.engine)
    assert audited.get("/v1/me/summary").status_code == 401  # no key
    assert audited.get("/v1/me/summary", headers=bearer("hp_unknown.key")).status_code == 401
    assert audited.get("/v1/shared/" + "A" * 32).status_code == 404  # no such code: no one's data
    assert audited.get("/v1/metrics", headers=bearer(world.user_key)).status_code == 200  # the catalogue
    assert audited.get("/health").status_code in (200, 503)
    bad = audited.get("/v1/me/aggregates", params={**QUERY, "types": "NOPE"}, headers=bearer(world.user_key))
    forbidden = audited.get(f"/v1/users/{world.other}/summary", headers=bearer(world.user_key))
    assert (bad.status_code, forbidden.status_code) == (422, 403)
    assert audited.put("/v1/me/source-priority", json={"order": ["phone"]}, headers=bearer(world.user_key)).is_success
    flush(audited)
    rows = audit_rows(world.engine, since)
    # the 422 read the key's own user; the 403 read nobody's data (the key is recorded, the user it asked for not)
    assert [(r["route"], r["status"], r["user_id"]) for r in rows] == [
        ("/v1/me/aggregates", 422, world.user),
        ("/v1/users/{user_id}/summary", 403, None),
    ]


def test_a_user_pages_through_their_own_entries_newest_first(audited: TestClient, world: ReadWorld) -> None:
    with psycopg_connection(world.engine) as conn:
        user = new_user(world.engine, prefix="pager")
        key = create_api_key(conn, user)
        for n in range(5):
            record(conn, AuditEntry.now("cli", f"healthpipe test {n}", user, records=n))
        record(conn, AuditEntry.now("cli", "healthpipe test other", world.other, records=9))
    first = audited.get("/v1/me/audit", params={"limit": 2}, headers=bearer(key)).json()
    assert [e["route"] for e in first["entries"]] == ["healthpipe test 4", "healthpipe test 3"]
    assert first["entries"][0] | {"id": 0, "at": ""} == {
        "id": 0,
        "at": "",
        "channel": "cli",
        "keyId": None,
        "keyPrefix": None,
        "shareId": None,
        "route": "healthpipe test 4",
        "method": "RUN",
        "status": 0,
        "records": 4,
    }
    second = audited.get("/v1/me/audit", params={"limit": 2, "before": first["nextBefore"]}, headers=bearer(key))
    third = audited.get(
        "/v1/me/audit", params={"limit": 2, "before": second.json()["nextBefore"]}, headers=bearer(key)
    ).json()
    assert [e["route"] for e in second.json()["entries"]] == ["healthpipe test 2", "healthpipe test 1"]
    assert [e["route"] for e in third["entries"]] == ["healthpipe test 0"] and third["nextBefore"] is None
    flush(audited)  # the three reads of the trail are entries themselves, the newest
    with psycopg_connection(world.engine) as conn:
        newest = entries_of(conn, user, 3)
    assert [(e.route, e.records) for e in newest] == [("/v1/me/audit", 1), ("/v1/me/audit", 2), ("/v1/me/audit", 2)]
    latest = audited.get("/v1/me/audit", params={"limit": 1}, headers=bearer(key)).json()["entries"][0]
    assert (latest["keyId"], latest["keyPrefix"]) == (newest[0].key_id, key[:11])  # as `keys list` names it
    flush(audited)
    with psycopg_connection(world.engine) as conn:  # an erasure keeps the entries, no longer saying whose
        before = conn.execute("SELECT count(*) FROM app.audit_log").fetchone()
        assert forget_user(conn, user) == 9 and entries_of(conn, user, 10) == []
        assert conn.execute("SELECT count(*) FROM app.audit_log").fetchone() == before
    schema = audited.get("/openapi.json").json()
    assert "AuditPage" in schema["components"]["schemas"] and "/v1/me/audit" in schema["paths"]


def test_the_shutdown_writes_what_waits_and_an_outage_keeps_rows_up_to_the_limit(
    world: ReadWorld, unreachable_engine: Engine
) -> None:
    user = new_user(world.engine, prefix="shutdown")
    with psycopg_connection(world.engine) as conn:
        key = create_api_key(conn, user)
    settings = Settings(audit_flush_seconds=3600)  # no tick during the test: only the shutdown writes
    with TestClient(create_app(world.engine, settings)) as client:
        assert client.get("/v1/me", headers=bearer(key)).status_code == 200
        assert client.app.state.audit.pending == 1  # type: ignore[attr-defined]
    with psycopg_connection(world.engine) as conn:
        assert [e.route for e in entries_of(conn, user, 10)] == ["/v1/me"]

    buffer = AuditBuffer(flush_seconds=3600, max_pending=3)
    buffer.start(unreachable_engine)
    for n in range(5):
        buffer.add(AuditEntry(dt.datetime.now(dt.UTC), "cli", f"r{n}", user_id=user))
    assert buffer.flush() == 0 and buffer.pending == 3 and buffer.dropped == 2  # the two oldest went
    buffer.close()
