"""Samples a fuzz of the sync route found to fail a whole batch with a 500 (a database or encoding error while landing)
instead of being rejected one by one with a reason: each answers 200 with the sample counted (synced, duplicate or
error) and the batch's other sample landed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from pipeline.accounts import create_api_key, register_device
from pipeline.infra.database import psycopg_connection
from tests.support.helpers import landed, new_user

GOOD = {
    "type": "STEPS",
    "value": 5,
    "unit": "count",
    "startDate": "2024-05-01T08:00:00Z",
    "endDate": "2024-05-01T08:10:00Z",
}


def _with(**fields: Any) -> dict[str, Any]:
    return {**GOOD, "startDate": "2024-05-01T09:00:00Z", "endDate": "2024-05-01T09:10:00Z", **fields}


HOSTILE = {
    "NUL in type": _with(type="STE\x00PS"),
    "NUL in unit": _with(unit="co\x00unt"),
    "NUL in startDate": _with(startDate="2024-05-01T09:00:00Z\x00"),
    "NUL in sourceDevice": _with(sourceDevice="Anna\x00s Watch"),
    "NUL in sourceApp": _with(sourceApp="Health\x00"),
    "NUL in timezone": _with(timezone="Europe/Amster\x00dam"),
    "NUL in id": _with(id="a\x00b"),
    "NUL in a metadata value": _with(metadata={"HKMetadataKeyDeviceName": "x\x00"}),
    "NUL in a metadata key": _with(metadata={"k\x00": "x"}),
    "NUL in a text value": _with(value="1\x00"),
    "NUL in a sample that is no object": "x\x00",
    "value Infinity": _with(value=float("inf")),
    "value NaN": _with(value=float("nan")),
    "lone surrogate in sourceApp": _with(sourceApp="\ud800"),
}


@pytest.fixture(scope="module")
def client_and_key(engine: Engine) -> Any:
    user = new_user(engine)
    with psycopg_connection(engine) as conn:
        register_device(conn, user, "watch-1", "watch", "Watch")
        key = create_api_key(conn, user, False)
    with TestClient(create_app(engine), raise_server_exceptions=False) as client:
        yield client, key, user


@pytest.mark.parametrize("sample", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_sample_is_refused_alone(client_and_key: Any, engine: Engine, sample: Any) -> None:
    client, key, user = client_and_key
    before = len(landed(engine, user))
    response = client.post(
        "/v1/me/devices/watch-1/sync",
        content=json.dumps({"samples": [GOOD, sample]}, allow_nan=True),  # NaN and Infinity written bare
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["synced"] + answer["duplicates"] + answer["errors"] == 2
    assert len(landed(engine, user)) - before == answer["synced"]  # the good sample: landed once, then a duplicate
