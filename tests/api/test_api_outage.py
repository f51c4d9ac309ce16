"""A database outage in the middle of a stream of syncs: the API answers 503 with Retry-After while PostgreSQL is
down, never another 5xx, is back within 2 s of the restart, and every batch it acknowledged is in raw.samples exactly
once (a client retries with the same Idempotency-Key, so a batch that committed before its answer was lost replays).

Real everything: an embedded PostgreSQL of the test's own, stopped and started with pg_ctl; the API under uvicorn on a
free port; a client thread speaking HTTP.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn

from api.main import create_api_engine, create_app
from pipeline.accounts import create_api_key, create_user, register_device
from pipeline.infra.database import parse_postgres_url, psycopg_connection, with_driver
from pipeline.infra.embedded_server import EmbeddedPostgres
from pipeline.infra.migrations import migrate
from pipeline.infra.settings import Settings

pytestmark = pytest.mark.slow

USER, DEVICE = "outage_user", "watch-1"
SAMPLES_PER_BATCH = 3
RETRY_CAP_SECONDS = 0.2  # Retry-After says 5 s; the test's client waits at most this


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def batch(number: int) -> list[dict[str, object]]:
    """Batch ``number``'s samples: steps in minutes of their own, so each landed row names its batch."""
    minutes = [number * SAMPLES_PER_BATCH + i for i in range(SAMPLES_PER_BATCH)]
    return [
        {
            "type": "STEPS",
            "value": 10 + minute % 7,
            "unit": "count",
            "startDate": f"2024-05-01T{minute // 60 % 24:02d}:{minute % 60:02d}:00Z",
            "endDate": f"2024-05-01T{minute // 60 % 24:02d}:{minute % 60:02d}:30Z",
        }
        for minute in minutes
    ]


@dataclass
class Answer:
    at: float
    status: int
    retry_after: str | None


@dataclass
class SyncingClient:
    """Syncs batch after batch, each retried with its Idempotency-Key until a 200; stops after a 200 when asked."""

    url: str
    key: str
    answers: list[Answer] = field(default_factory=list)
    acknowledged: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.url, timeout=30) as client:
            number = 0
            while not self.stop.is_set():
                while True:
                    try:
                        response = client.post(
                            f"/v1/me/devices/{DEVICE}/sync",
                            headers=headers | {"Idempotency-Key": f"batch-{number}"},
                            json={"samples": batch(number)},
                        )
                    except httpx.HTTPError as exc:  # the API itself never goes away in this test
                        self.failures.append(f"batch {number}: {type(exc).__name__}")
                        return
                    self.answers.append(
                        Answer(time.monotonic(), response.status_code, response.headers.get("Retry-After"))
                    )
                    if response.status_code == 200:
                        self.acknowledged.append(number)
                        break
                    if response.status_code != 503:
                        self.failures.append(f"batch {number}: {response.status_code} {response.text[:200]}")
                        return
                    time.sleep(min(float(response.headers.get("Retry-After", "1")), RETRY_CAP_SECONDS))
                number += 1


@pytest.fixture
def database(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path / "home", port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_an_outage_mid_stream_is_503_then_back_within_2s_and_nothing_is_lost_or_doubled(
    database: EmbeddedPostgres,
) -> None:
    url = with_driver(parse_postgres_url(database.status().url("healthpipe")), "psycopg")
    migrate(url)
    engine = create_api_engine(url, Settings().api_db_connections)  # as the API makes it: no ping before each borrow
    with psycopg_connection(engine) as conn:
        create_user(conn, USER, "UTC")
        register_device(conn, USER, DEVICE, "watch", "Watch")
        key = create_api_key(conn, USER, False)
    port = free_port()
    api = uvicorn.Server(uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning"))
    serving = threading.Thread(target=api.run, daemon=True)
    serving.start()
    deadline = time.monotonic() + 20
    while not api.started:
        assert time.monotonic() < deadline, "API did not start"
        time.sleep(0.05)
    client = SyncingClient(f"http://127.0.0.1:{port}", key)
    syncing = threading.Thread(target=client.run, daemon=True)
    try:
        syncing.start()
        while len(client.acknowledged) < 20 and syncing.is_alive():
            time.sleep(0.02)
        database.stop()  # pg_ctl -m fast: open connections are cut, requests in flight fail
        down_at = time.monotonic()
        time.sleep(2)
        database.start()
        restarted_at = time.monotonic()
        while not any(a.at > restarted_at and a.status == 200 for a in client.answers) and syncing.is_alive():
            assert time.monotonic() - restarted_at < 30, "no 200 within 30 s of the restart"
            time.sleep(0.02)
        acknowledged_before = len(client.acknowledged)
        while len(client.acknowledged) < acknowledged_before + 10 and syncing.is_alive():
            time.sleep(0.02)
    finally:
        client.stop.set()
        syncing.join(60)
        api.should_exit = True
        serving.join(10)

    assert client.failures == []
    assert {a.status for a in client.answers} == {200, 503}
    during = [a for a in client.answers if down_at < a.at < restarted_at]
    assert during and {a.status for a in during} == {503}
    assert all(a.retry_after == "5" for a in client.answers if a.status == 503)
    first_ok = min(a.at for a in client.answers if a.at > restarted_at and a.status == 200)
    assert first_ok - restarted_at < 2.0
    assert client.acknowledged == list(range(len(client.acknowledged)))  # each batch acknowledged once, in order

    with psycopg_connection(engine) as conn:
        rows = conn.execute(
            "SELECT to_char(start_utc AT TIME ZONE 'UTC', 'HH24:MI'), count(*) FROM raw.samples WHERE user_id = %s "
            "GROUP BY 1",
            (USER,),
        ).fetchall()
    engine.dispose()
    expected = {str(s["startDate"])[11:16] for n in client.acknowledged for s in batch(n)}
    assert dict(rows) == dict.fromkeys(expected, 1)
