"""Device sync under hostile input: poison samples, deep nesting, many distinct keys, oversized bodies, heads and
fields. The app runs in-process (Starlette's TestClient, or the ASGI interface itself) on a real database; the
request head limit runs on a real uvicorn server with the protocol `healthpipe up` serves with."""

from __future__ import annotations

import asyncio
import importlib
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from uvicorn.protocols.http.h11_impl import H11Protocol

from api.main import create_app
from pipeline.accounts import create_api_key, register_device
from pipeline.infra.database import psycopg_connection
from pipeline.infra.settings import Settings
from pipeline.privacy import reads
from tests.support.helpers import new_user
from tests.support.served import free_port, served

SYNC = "/v1/me/devices/phone-1/sync"


def device_owner(engine: Engine) -> tuple[str, dict[str, str]]:
    """A new user with device ``phone-1``, and the headers of their API key."""
    user = new_user(engine)
    with psycopg_connection(engine) as conn:
        register_device(conn, user, "phone-1", "phone", "Phone")
        key = create_api_key(conn, user, False)
    return user, {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as test_client:
        yield test_client


def steps(minute: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": "STEPS",
        "value": 100 + minute,
        "unit": "count",
        "startDate": f"2024-05-01T08:{minute:02d}:00Z",
        "endDate": f"2024-05-01T08:{minute:02d}:30Z",
        **extra,
    }


def text_of(sample: dict[str, Any]) -> str:
    return json.dumps(sample)


def body_of(texts: list[str]) -> bytes:
    return ('{"samples": [' + ", ".join(texts) + "]}").encode()


def quarantined(engine: Engine, batch_id: int) -> list[tuple[str, str]]:
    """(reason, the sample's text as stored) of the batch's rejects, in order (payloads decrypted)."""
    with psycopg_connection(engine) as conn:
        rows = reads.quarantined(conn, batch_id=batch_id)
    return [(row.reason, str(json.loads(row.payload)["text"])) for row in rows]


def landed_count(engine: Engine, batch_id: int) -> int:
    with psycopg_connection(engine) as conn:
        row = conn.execute("SELECT count(*) FROM raw.samples WHERE batch_id = %s", (batch_id,)).fetchone()
    return int(str(row[0])) if row else 0


NUL_AND_SURROGATES = (
    "holds a NUL character (\\u0000) or an unpaired surrogate (\\ud800-\\udfff), which cannot be stored"
)
# Each sample's text exactly as sent (JSON escapes stay escapes), and the reason it is rejected for.
POISON = [
    (text_of(steps(10)).replace('"value": 110', '"value": NaN'), "value is not a number"),
    (text_of(steps(11)).replace('"value": 111', '"value": -Infinity'), "value is not a number"),
    (text_of(steps(12)).replace('"value": 112', '"value": 1e400'), "value is not a number"),
    (
        text_of(steps(13)).replace('"value": 113', '"value": ' + "9" * 4000),
        "value longer than 1,024 characters; value out of range",
    ),
    (text_of(steps(13)).replace('"value": 113', '"value": -' + "9" * 400), "value out of range"),
    (text_of(steps(14, metadata="hello")), "metadata is not a JSON object"),
    (text_of(steps(15, unit="count\u0000")), NUL_AND_SURROGATES),
    (text_of(steps(16, **{"no\u0000te": 1})), NUL_AND_SURROGATES),
    (text_of(steps(17, metadata={"note": {"deep": "a\u0000b"}})), NUL_AND_SURROGATES),
    (text_of(steps(18, sourceDevice="phone \ud800")), NUL_AND_SURROGATES),
    (text_of(steps(19, **{"\udc00": 1})), NUL_AND_SURROGATES),
    (
        text_of(steps(20)).replace("}", ', "metadata": {"x": NaN}}'),
        "metadata holds NaN or Infinity, or is nested too deeply",
    ),
    ('{"type": "STEPS", "value": ' + "1" * 5000 + "}", "holds an integer of more than 4,300 digits"),
]


def test_poison_samples_are_rejected_one_by_one_kept_as_sent_and_the_rest_land(
    engine: Engine, client: TestClient
) -> None:
    _, headers = device_owner(engine)
    good = [text_of(steps(minute)) for minute in range(5)]
    # a backslash before u0000 (an escaped backslash, then text) and a surrogate pair (an emoji) are fine
    fine = [text_of(steps(30, sourceDevice="C:\\u0000dir")), text_of(steps(31, sourceDevice="phone \U0001f600"))]
    texts = good[:3] + [text for text, _ in POISON] + good[3:] + fine
    body = body_of(texts)
    first = client.post(SYNC, content=body, headers=headers)  # no Idempotency-Key: the body's hash is the key
    assert first.status_code == 200, first.text
    answer = first.json()
    assert (answer["synced"], answer["duplicates"], answer["errors"]) == (7, 0, 13)
    assert [(d["index"], d["error"]) for d in answer["errorDetails"]] == [
        (3 + i, reason) for i, (_, reason) in enumerate(POISON)
    ]
    assert answer["errorDetails"][0]["sample"] == POISON[0][0]  # short: echoed whole
    assert answer["errorDetails"][3]["sample"] == POISON[3][0][:200] + f"... ({len(POISON[3][0]):,} characters)"
    assert quarantined(engine, answer["batchId"]) == [(reason, text) for text, reason in POISON]
    assert landed_count(engine, answer["batchId"]) == 7

    retry = client.post(SYNC, content=body, headers=headers)
    assert retry.status_code == 200
    assert retry.json() == answer
    assert retry.headers["Idempotent-Replayed"] == "true"


def test_a_deeply_nested_reject_is_answered_before_the_batch_commits_and_replays(
    engine: Engine, client: TestClient
) -> None:
    _, headers = device_owner(engine)
    nested = "[" * 256 + "]" * 256
    texts = [text_of(steps(0)), '{"type": "NOT_A_TYPE", "value": 1, "deep": ' + nested + "}"]
    headers = headers | {"Idempotency-Key": "deep-1"}
    first = client.post(SYNC, content=body_of(texts), headers=headers)
    assert first.status_code == 200, first.text
    answer = first.json()
    assert (answer["synced"], answer["errors"]) == (1, 1)
    (detail,) = answer["errorDetails"]
    assert detail["sample"] == texts[1][:200] + f"... ({len(texts[1]):,} characters)"
    assert quarantined(engine, answer["batchId"])[0][1] == texts[1]
    retry = client.post(SYNC, content=body_of(texts), headers=headers)
    assert (retry.status_code, retry.json()) == (200, answer)


def test_distinct_keys_of_rejected_samples_are_not_multiplied(engine: Engine, client: TestClient) -> None:
    """300 rejects with 10 keys of their own each: each quarantined payload is its own text, not a row over the
    union of 3,000 keys (which stored 300 x 3,000 keys)."""
    _, headers = device_owner(engine)
    texts = [json.dumps({"type": "NOT_A_TYPE", **{f"k{i}_{j}": j for j in range(10)}}) for i in range(300)]
    response = client.post(SYNC, content=body_of(texts), headers=headers)
    assert response.status_code == 200
    assert response.json()["errors"] == 300
    stored = quarantined(engine, response.json()["batchId"])
    assert [text for _, text in stored] == texts
    with psycopg_connection(engine) as conn:
        payloads = [row.payload for row in reads.quarantined(conn, batch_id=response.json()["batchId"])]
        sealed = conn.execute(
            """SELECT sum(octet_length(sealed)) FROM raw.sealed_chunks
               WHERE chunk_id IN (SELECT payload_chunk FROM raw.quarantine WHERE batch_id = %s)""",
            (response.json()["batchId"],),
        ).fetchone()
    # each stored as its own {"text":"..."} (compact: the payload's text as built, no longer re-spaced by jsonb)
    assert sum(map(len, payloads)) == sum(len(json.dumps({"text": text}, separators=(",", ":"))) for text in texts)
    assert sealed is not None and int(str(sealed[0])) < 2 * sum(map(len, payloads))  # one chunk, not a row each


def test_a_text_field_or_metadata_over_its_limit_rejects_that_sample_only(engine: Engine, client: TestClient) -> None:
    _, headers = device_owner(engine)
    texts = [
        text_of(steps(0, sourceDevice="x" * 1024)),
        text_of(steps(1, sourceDevice="x" * 1025)),
        text_of(steps(2, sourceApp=["an", "array"])),
        text_of(steps(3, metadata={"note": "y" * (16 * 1024 - 11)})),  # {"note":"..."}: 16,384 bytes
        text_of(steps(4, metadata={"note": "y" * (16 * 1024 - 10)})),
    ]
    response = client.post(SYNC, content=body_of(texts), headers=headers)
    assert response.status_code == 200
    answer = response.json()
    assert (answer["synced"], answer["errors"]) == (2, 3)
    assert [(d["index"], d["error"]) for d in answer["errorDetails"]] == [
        (1, "sourceDevice longer than 1,024 characters"),
        (2, "sourceApp is an object or array, not text"),
        (4, "metadata over 16,384 bytes of JSON"),
    ]


def test_the_field_limits_follow_the_settings(engine: Engine) -> None:
    _, headers = device_owner(engine)
    settings = Settings(sync_max_text_chars=30, sync_max_metadata_bytes=20)
    texts = [text_of(steps(0, sourceDevice="x" * 31)), text_of(steps(1, metadata={"note": "y" * 20}))]
    with TestClient(create_app(engine, settings)) as client:
        answer = client.post(SYNC, content=body_of(texts), headers=headers).json()
    assert [d["error"] for d in answer["errorDetails"]] == [
        "sourceDevice longer than 30 characters",
        "metadata over 20 bytes of JSON",
    ]


def test_a_body_that_is_no_samples_object_is_a_short_422(engine: Engine, client: TestClient) -> None:
    _, headers = device_owner(engine)
    for body, message in [
        (b'{"samples": [1, 2,]}', "malformed JSON at character 18"),
        (b"[]", 'the body must be a JSON object with a "samples" array'),
        (b'{"samples": {}}', 'the body must be a JSON object with a "samples" array'),
        (b'{"samples": [\xff]}', "the body is not UTF-8 text (byte 13)"),
        (b'{"samples": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "value at character 13 is nested too deeply"),
        (b'{"samples": [' + b"{}," * 10_000 + b"{}]}", "at most 10000 samples per request"),
    ]:
        response = client.post(SYNC, content=body, headers=headers)
        assert response.status_code == 422
        assert response.json() == {"detail": [{"type": "sync_body", "loc": ["body"], "msg": message}]}


def test_a_body_over_the_limit_is_refused_by_its_length_before_it_is_read(engine: Engine) -> None:
    user, headers = device_owner(engine)
    with TestClient(create_app(engine, Settings(api_max_body_bytes=2_000))) as client:
        fits = client.post(SYNC, content=body_of([text_of(steps(0))] * 15), headers=headers)
        over = client.post(SYNC, content=body_of([text_of(steps(0))] * 30), headers=headers)
    assert fits.status_code == 200
    assert over.status_code == 413
    with psycopg_connection(engine) as conn:  # only the request that fits made a batch
        batches = conn.execute("SELECT count(*) FROM app.ingest_batches WHERE user_id = %s", (user,)).fetchone()
    assert batches is not None and batches[0] == 1
    assert over.json() == {"detail": "request body over the limit of 2,000 bytes (HEALTHPIPE_API_MAX_BODY_BYTES)"}


def test_a_chunked_body_is_counted_as_it_streams_and_refused_at_the_limit(engine: Engine) -> None:
    """No Content-Length: the app reads 500-byte chunks; the fifth crosses the 2,000-byte limit and is the last one
    read of the forty sent."""
    _, headers = device_owner(engine)
    app = create_app(engine, Settings(api_max_body_bytes=2_000))
    app.state.engine = engine
    chunks = [b'{"samples": [' + b" " * 487] + [b" " * 500] * 39
    read = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        read += 1
        return {"type": "http.request", "body": chunks[read - 1], "more_body": read < len(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": SYNC,
        "raw_path": SYNC.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        + [(b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"]) == {
        "detail": "request body over the limit of 2,000 bytes (HEALTHPIPE_API_MAX_BODY_BYTES)"
    }
    assert read == 5


def test_a_head_over_the_limit_is_refused_with_431(engine: Engine) -> None:
    _, headers = device_owner(engine)
    with TestClient(create_app(engine, Settings(api_max_header_bytes=1_000))) as client:
        fits = client.get("/v1/me", headers=headers | {"X-Padding": "p" * 500})
        over = client.get("/v1/me", headers=headers | {"X-Padding": "p" * 1_000})
    assert fits.status_code == 200
    assert over.status_code == 431
    assert over.json() == {
        "detail": "request line and headers over the limit of 1,000 bytes (HEALTHPIPE_API_MAX_HEADER_BYTES)"
    }


def test_the_served_api_bounds_the_head_before_buffering_it(engine: Engine) -> None:
    """uvicorn's default protocol buffers a head of any size; the one `healthpipe up` serves with stops at the
    limit and answers 431 naming it."""
    from pipeline.stack import API_HTTP_PROTOCOL, api_server_command  # here: the other tests run on any stack

    module, name = API_HTTP_PROTOCOL.split(":")
    protocol = getattr(importlib.import_module(module), name)
    assert issubclass(protocol, H11Protocol)
    command = api_server_command(Settings(api_max_header_bytes=4_096))
    assert command[command.index("--http") + 1] == API_HTTP_PROTOCOL
    assert command[command.index("--h11-max-incomplete-event-size") + 1] == "4096"

    port = free_port()
    with (
        served(create_app(engine), port, http=protocol, h11_max_incomplete_event_size=4_096),
        socket.create_connection(("127.0.0.1", port), timeout=10) as conn,
    ):
        # a head still arriving: the server stops buffering it at the limit rather than waiting for its end
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"p" * 10_000)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert answer.endswith(b"request line and headers over the limit of 4,096 bytes (HEALTHPIPE_API_MAX_HEADER_BYTES)")


def test_a_422_echoes_bounded_inputs(engine: Engine, client: TestClient) -> None:
    _, headers = device_owner(engine)
    response = client.put(
        "/v1/me/devices/d1", headers=headers, json={"deviceClass": ["x"] * 100_000, "name": "n" * 1_000_000}
    )
    assert response.status_code == 422
    assert len(response.content) < 2_000
    errors = {tuple(e["loc"]): e for e in response.json()["detail"]}
    assert errors[("body", "name")]["input"] == "n" * 200 + "... (1,000,000 characters)"
    assert errors[("body", "deviceClass")]["input"] == "an array of 100,000 items"
