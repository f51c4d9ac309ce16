"""API keys and device sync over HTTP: a real uvicorn server on loopback, a real database."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import Engine, text

from api.main import create_app
from pipeline.accounts import create_api_key, revoke_api_key
from pipeline.infra.database import psycopg_connection
from tests.support.helpers import landed, new_user
from tests.support.served import served


@pytest.fixture(scope="module")
def api_url(engine: Engine) -> Iterator[str]:
    with served(create_app(engine), log_level="warning") as port:
        yield f"http://127.0.0.1:{port}"


def key_for(engine: Engine, user_id: str | None, admin: bool = False) -> str:
    with psycopg_connection(engine) as conn:
        return create_api_key(conn, user_id, admin)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


SAMPLES = [
    {
        "type": "STEPS",
        "value": 812,
        "unit": "count",
        "startDate": "2024-05-01T08:00:00+02:00",
        "endDate": "2024-05-01T08:10:00+02:00",
        "sourceDevice": "Anna's iPhone",
    },
    {
        "type": "HEART_RATE",
        "value": 64,
        "unit": "bpm",
        "startDate": "2024-05-01T08:05:00Z",
        "endDate": "2024-05-01T08:05:00Z",
    },
    {
        "type": "STEPS",
        "value": "many",
        "unit": "count",
        "startDate": "2024-05-01T09:00:00Z",
        "endDate": "2024-05-01T09:10:00Z",
    },
    {
        "type": "GLUCOSE",
        "value": 5.4,
        "unit": "mmol/L",
        "startDate": "2024-05-01T09:00:00Z",
        "endDate": "2024-05-01T09:00:00Z",
    },
    "not an object",
]


def test_requests_without_a_valid_key_get_401(engine: Engine, api_url: str) -> None:
    user = new_user(engine)
    key = key_for(engine, user)
    assert httpx.get(f"{api_url}/v1/me").status_code == 401
    assert httpx.get(f"{api_url}/v1/me", headers=auth("hp_not-a-real-key")).status_code == 401
    assert httpx.get(f"{api_url}/v1/me", headers={"Authorization": key}).status_code == 401  # no Bearer scheme
    response = httpx.get(f"{api_url}/v1/me", headers=auth(key))
    assert response.status_code == 200
    assert response.json() == {"userId": user, "displayName": None, "homeTimezone": "UTC"}
    with psycopg_connection(engine) as conn:
        assert revoke_api_key(conn, key[:11])
    revoked = httpx.get(f"{api_url}/v1/me", headers=auth(key))
    assert revoked.status_code == 401
    assert revoked.json() == {"detail": "invalid or revoked API key"}
    assert revoked.headers["WWW-Authenticate"] == "Bearer"


def test_keys_are_stored_hashed(engine: Engine) -> None:
    key = key_for(engine, new_user(engine))
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT prefix, key_hash FROM app.api_keys WHERE prefix = :p"), {"p": key[:11]}
        ).one()
    assert key not in str(stored) and len(stored.key_hash) == 32


def test_a_key_never_reaches_another_users_devices(engine: Engine, api_url: str) -> None:
    anna, ben = new_user(engine), new_user(engine)
    anna_key, ben_key = key_for(engine, anna), key_for(engine, ben)
    put = httpx.put(
        f"{api_url}/v1/me/devices/phone-1",
        headers=auth(anna_key),
        json={"deviceClass": "phone", "name": "Anna's iPhone"},
    )
    assert put.status_code == 201
    assert [d["deviceId"] for d in httpx.get(f"{api_url}/v1/me/devices", headers=auth(anna_key)).json()] == ["phone-1"]
    assert httpx.get(f"{api_url}/v1/me/devices", headers=auth(ben_key)).json() == []
    # Ben cannot sync into Anna's device id: it is not his
    stolen = httpx.post(f"{api_url}/v1/me/devices/phone-1/sync", headers=auth(ben_key), json={"samples": SAMPLES})
    assert stolen.status_code == 404
    assert len(landed(engine, anna)) == 0 and len(landed(engine, ben)) == 0
    admin = httpx.get(f"{api_url}/v1/me", headers=auth(key_for(engine, None, admin=True)))
    assert admin.status_code == 403


def test_sync_lands_good_samples_reports_errors_and_replays_retries(engine: Engine, api_url: str) -> None:
    user = new_user(engine)
    key = key_for(engine, user)
    httpx.put(f"{api_url}/v1/me/devices/watch-7", headers=auth(key), json={"deviceClass": "watch", "name": "Watch"})
    headers = auth(key) | {"Idempotency-Key": "upload-0001"}
    first = httpx.post(f"{api_url}/v1/me/devices/watch-7/sync", headers=headers, json={"samples": SAMPLES})
    assert first.status_code == 200
    body = first.json()
    assert (body["synced"], body["duplicates"], body["errors"]) == (2, 0, 3)
    assert [(e["index"], e["error"]) for e in body["errorDetails"]] == [
        (2, "value is not a number"),
        (3, "unknown metric type 'GLUCOSE'"),
        (4, "sample is not a JSON object"),
    ]
    samples = landed(engine, user)
    assert samples[["metric", "device_class", "device", "source_name"]].values.tolist() == [
        ["STEPS", "watch", "watch-7", "Anna's iPhone"],
        ["HEART_RATE", "watch", "watch-7", "watch-7"],  # no source name: the device id, not its name
    ]

    retry = httpx.post(f"{api_url}/v1/me/devices/watch-7/sync", headers=headers, json={"samples": SAMPLES})
    assert retry.json() == body
    assert retry.headers["Idempotent-Replayed"] == "true"
    reused = httpx.post(f"{api_url}/v1/me/devices/watch-7/sync", headers=headers, json={"samples": SAMPLES[:1]})
    assert reused.status_code == 422
    # the same samples under a new key are recognised sample by sample
    other = httpx.post(
        f"{api_url}/v1/me/devices/watch-7/sync",
        headers=auth(key) | {"Idempotency-Key": "2"},
        json={"samples": SAMPLES[:2]},
    )
    assert (other.json()["synced"], other.json()["duplicates"]) == (0, 2)
    assert len(landed(engine, user)) == 2
    devices = httpx.get(f"{api_url}/v1/me/devices", headers=auth(key)).json()
    assert devices[0]["lastSyncAt"] is not None


def test_fifty_identical_requests_at_once_land_once(engine: Engine, api_url: str) -> None:
    user = new_user(engine)
    key = key_for(engine, user)
    httpx.put(f"{api_url}/v1/me/devices/cgm", headers=auth(key), json={"deviceClass": "wearable", "name": "CGM"})
    samples = [
        {
            "type": "BLOOD_GLUCOSE",
            "value": 90 + i,
            "unit": "mg/dL",
            "startDate": f"2024-05-01T10:{i:02d}:00Z",
            "endDate": f"2024-05-01T10:{i:02d}:00Z",
        }
        for i in range(40)
    ]  # no Idempotency-Key: the body's hash is the key

    def post(_: int) -> httpx.Response:
        return httpx.post(f"{api_url}/v1/me/devices/cgm/sync", headers=auth(key), json={"samples": samples}, timeout=60)

    with ThreadPoolExecutor(50) as pool:
        responses = list(pool.map(post, range(50)))
    assert {r.status_code for r in responses} == {200}
    bodies = [r.json() for r in responses]
    assert all(b == bodies[0] for b in bodies)
    assert (bodies[0]["synced"], bodies[0]["errors"]) == (40, 0)
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 49
    assert len(landed(engine, user)) == 40
    with engine.connect() as conn:
        batches = conn.execute(text("SELECT count(*) FROM app.ingest_batches WHERE user_id = :u"), {"u": user})
        assert batches.scalar_one() == 1


def test_sync_rejects_oversized_batches(engine: Engine, api_url: str) -> None:
    user = new_user(engine)
    key = key_for(engine, user)
    httpx.put(f"{api_url}/v1/me/devices/p", headers=auth(key), json={"deviceClass": "phone", "name": "P"})
    response = httpx.post(f"{api_url}/v1/me/devices/p/sync", headers=auth(key), json={"samples": [{}] * 10_001})
    assert response.status_code == 422
    assert "10000" in response.text
