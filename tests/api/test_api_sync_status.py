"""`GET /v1/me/sync-status`: a device's app follows its batches (accepted -> landed -> computed) as Server-Sent
Events, on a real server; only the caller's batches; the stream ends when the client goes away, or after its
lifetime, and holds no database connection."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

import fastapi.routing
import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from api.deps import get_connections
from api.main import create_app
from api.routers.sync_status import OPEN_STREAMS
from pipeline.accounts import create_api_key, register_device
from pipeline.infra.database import create_warehouse_engine, psycopg_connection
from pipeline.infra.settings import Settings
from pipeline.ingest.device_sync import sync_samples
from tests.support.helpers import new_user
from tests.support.range_run import materialize_range
from tests.support.served import served

DAY = dt.date(2024, 5, 1)
STEPS = {"type": "STEPS", "unit": "count", "sourceDevice": "apple_watch"}


def steps(value: int, minute: int) -> dict[str, Any]:
    start = f"2024-05-01T08:{minute:02d}:00+02:00"
    return {**STEPS, "value": value, "startDate": start, "endDate": f"2024-05-01T08:{minute + 5:02d}:00+02:00"}


def device_user(engine: Engine, device: str = "watch-1", timezone: str = "Europe/Amsterdam") -> tuple[str, str]:
    user = new_user(engine, timezone=timezone)
    with psycopg_connection(engine) as conn:
        register_device(conn, user, device, "watch", "Watch")
        return user, create_api_key(conn, user)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class EventReader:
    """Server-Sent Events off a streaming response, one at a time (fields of each; comments under ":")."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.iter_lines()

    def next(self) -> dict[str, str]:
        event: dict[str, str] = {}
        for line in self.lines:
            if line == "":
                if event:
                    return event
                continue
            name, _, value = line.partition(":")
            event[name or ":"] = value.removeprefix(" ")
        raise AssertionError(f"the stream ended; last fields {event}")

    def until(self, state: str, batch_id: int) -> list[dict[str, Any]]:
        """Events (data decoded) up to ``state`` of ``batch_id``, that one included."""
        seen = []
        while True:
            event = self.next()
            if "data" in event:
                seen.append({**json.loads(event["data"]), "event": event["event"], "id": event["id"]})
                if seen[-1]["batchId"] == batch_id and seen[-1]["state"] == state:
                    return seen


def open_streams_reach(count: int) -> bool:
    deadline = time.monotonic() + 10
    while OPEN_STREAMS.count != count and time.monotonic() < deadline:
        time.sleep(0.05)
    return OPEN_STREAMS.count == count


def test_a_synced_batch_is_accepted_landed_then_computed_after_a_run_over_its_day(warehouse_url: URL) -> None:
    engine = create_warehouse_engine(warehouse_url)
    user, key = device_user(engine)
    _, other_key = device_user(engine)
    app = create_app(engine, Settings(sync_status_poll_seconds=0.1, sync_status_max_seconds=300))
    body = {"samples": [steps(500, 0), steps(500, 0), steps(700, 10), {**steps(1, 20), "type": "NOT_A_TYPE"}]}
    with (
        served(app, log_level="warning") as port,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http,
        http.stream("GET", "/v1/me/sync-status", headers=bearer(key)) as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = EventReader(stream)
        assert events.next() == {":": "sync status", "retry": "3000"}

        synced = http.post("/v1/me/devices/watch-1/sync", headers=bearer(key), json=body).json()
        assert (synced["synced"], synced["duplicates"], synced["errors"]) == (2, 1, 1)
        theirs = http.post("/v1/me/devices/watch-1/sync", headers=bearer(other_key), json={"samples": [steps(9, 0)]})
        batch = synced["batchId"]
        first = events.until("landed", batch)
        assert [(e["event"], e["state"]) for e in first] == [("accepted", "accepted"), ("landed", "landed")]
        accepted, landed = first
        assert (accepted["samples"], accepted["landed"], accepted["days"]) == (4, None, None)
        assert {k: landed[k] for k in ("samples", "landed", "duplicates", "rejected", "days", "computedDays")} == {
            "samples": 4,
            "landed": 2,
            "duplicates": 1,
            "rejected": 1,
            "days": 1,
            "computedDays": 0,
        }
        assert landed["deviceId"] == "watch-1" and landed["source"] == "device_sync" and landed["computedAt"] is None

        assert materialize_range([user], DAY, DAY)
        (computed,) = events.until("computed", batch)
        assert (computed["days"], computed["computedDays"], computed["landed"]) == (1, 1, 2)
        assert computed["computedAt"] >= computed["landedAt"]
        ids = [e["id"] for e in [*first, computed]]
        assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
        assert theirs.json()["batchId"] not in {e["batchId"] for e in [*first, computed]}
        assert OPEN_STREAMS.count == 1
    assert open_streams_reach(0)
    assert engine.pool.checkedout() == 0
    engine.dispose()


@pytest.fixture(scope="module")
def stream_engine(migrated_url: URL) -> Iterator[Engine]:
    """An engine of the stream tests alone, so its pool shows their connections only."""
    engine = create_warehouse_engine(migrated_url)
    yield engine
    engine.dispose()


def test_the_stream_ends_when_the_client_goes_away_and_holds_no_connection(
    stream_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fastapi.routing, "_PING_INTERVAL", 0.3)  # FastAPI's heartbeat, every 15 s when served
    _, key = device_user(stream_engine)
    app = create_app(stream_engine, Settings(sync_status_poll_seconds=0.1, sync_status_max_seconds=300))
    with served(app, log_level="warning") as port, httpx.Client(timeout=30) as http:
        with http.stream("GET", f"http://127.0.0.1:{port}/v1/me/sync-status", headers=bearer(key)) as stream:
            events = EventReader(stream)  # kept: its line iterator closes the response when collected
            assert events.next() == {":": "sync status", "retry": "3000"}
            assert events.next() == {":": "ping"}  # no batch: a heartbeat comment after a few polls
            assert OPEN_STREAMS.count == 1
            assert stream_engine.pool.checkedout() <= 1  # at most a poll in flight, never one held between polls
        assert open_streams_reach(0)  # the server-side generator ended with the connection
        assert stream_engine.pool.checkedout() == 0


def land(engine: Engine, user: str, device: str, samples: list[dict[str, Any]], retry: str | None = None) -> int:
    """A device sync (``retry``: its idempotency key) of ``samples``; its batch id."""
    with psycopg_connection(engine) as conn:
        return int(sync_samples(conn, user, device, samples, retry).response["batchId"])


def read_whole(client: TestClient, path: str, key: str, **headers: str) -> list[dict[str, Any]]:
    """Every event of a stream that ends on its own (a short lifetime)."""
    response = client.get(path, headers=bearer(key) | headers)
    assert response.status_code == 200, response.text
    assert response.text.startswith(": sync status\nretry: 3000\n\n")
    events = []
    for block in response.text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        if "data" in fields:
            events.append({**json.loads(fields["data"]), "event": fields["event"], "id": fields["id"]})
    return events


@pytest.fixture(scope="module")
def short_client(stream_engine: Engine) -> Iterator[TestClient]:
    app = create_app(stream_engine, Settings(sync_status_poll_seconds=0.05, sync_status_max_seconds=0.2))
    with TestClient(app) as client:
        yield client


def test_a_stream_ends_after_its_lifetime_with_each_batch_in_its_current_state(
    stream_engine: Engine, short_client: TestClient
) -> None:
    user, key = device_user(stream_engine)
    with psycopg_connection(stream_engine) as conn:
        register_device(conn, user, "phone-1", "phone", "Phone")
    watch = land(stream_engine, user, "watch-1", [steps(100, 0), steps(200, 10)])
    phone = land(stream_engine, user, "phone-1", [steps(100, 0)])
    again = land(stream_engine, user, "phone-1", [steps(100, 0)], "again")  # a duplicate only: nothing to compute
    other, other_key = device_user(stream_engine)
    land(stream_engine, other, "watch-1", [steps(5, 0)])

    started = time.monotonic()
    events = read_whole(short_client, "/v1/me/sync-status", key)
    assert time.monotonic() - started < 5
    assert [(e["batchId"], e["state"]) for e in events] == [(watch, "landed"), (phone, "landed"), (again, "computed")]
    assert [(e["landed"], e["duplicates"], e["days"], e["computedDays"]) for e in events] == [
        (2, 0, 1, 0),
        (1, 0, 1, 0),
        (0, 1, 0, 0),
    ]
    only_phone = read_whole(short_client, "/v1/me/sync-status?device_id=phone-1", key)
    assert [e["batchId"] for e in only_phone] == [phone, again]
    assert [e["batchId"] for e in read_whole(short_client, f"/v1/me/sync-status?batch_id={watch}", key)] == [watch]
    assert [e["batchId"] for e in read_whole(short_client, "/v1/me/sync-status", other_key)] != []
    assert {e["batchId"] for e in read_whole(short_client, "/v1/me/sync-status", other_key)} & {watch, phone} == set()

    # resuming after the watch batch's landed event: only what came after it
    resumed = read_whole(short_client, "/v1/me/sync-status", key, **{"Last-Event-ID": events[0]["id"]})
    assert [(e["batchId"], e["state"]) for e in resumed] == [
        (phone, "accepted"),
        (phone, "landed"),
        (again, "accepted"),
        (again, "landed"),
        (again, "computed"),
    ]


def test_another_users_device_or_batch_is_not_found(stream_engine: Engine, short_client: TestClient) -> None:
    _, key = device_user(stream_engine)
    other, _ = device_user(stream_engine, device="their-watch")
    theirs = land(stream_engine, other, "their-watch", [steps(5, 0)])
    by_device = short_client.get("/v1/me/sync-status?device_id=their-watch", headers=bearer(key))
    assert (by_device.status_code, by_device.json()) == (404, {"detail": "no device 'their-watch'"})
    by_batch = short_client.get(f"/v1/me/sync-status?batch_id={theirs}", headers=bearer(key))
    assert (by_batch.status_code, by_batch.json()) == (404, {"detail": f"no batch {theirs} of yours"})
    assert short_client.get("/v1/me/sync-status").status_code == 401
    with psycopg_connection(stream_engine) as conn:
        admin = create_api_key(conn, None, True)
    assert short_client.get("/v1/me/sync-status", headers=bearer(admin)).status_code == 403


def test_a_database_outage_mid_stream_skips_polls_and_keeps_the_stream(stream_engine: Engine) -> None:
    user, key = device_user(stream_engine)
    batch = land(stream_engine, user, "watch-1", [steps(100, 0)])
    uses = 0

    def connections() -> AbstractContextManager[Any]:
        nonlocal uses
        uses += 1
        if uses > 2:  # the key's check and the first poll, then the server is gone
            raise psycopg.OperationalError("connection refused")
        return psycopg_connection(stream_engine)

    app = create_app(stream_engine, Settings(sync_status_poll_seconds=0.05, sync_status_max_seconds=0.3))
    app.dependency_overrides[get_connections] = lambda: connections
    with TestClient(app) as client:
        events = read_whole(client, "/v1/me/sync-status", key)
    assert [(e["batchId"], e["state"]) for e in events] == [(batch, "landed")]
    assert uses > 3
