"""A device name is printable text: NUL (which PostgreSQL text cannot hold), other control characters and unpaired
surrogates (which UTF-8 cannot encode) are refused with a 422 naming the field, not a 500 from the database. Found
by the schema fuzz."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from pipeline.accounts import create_api_key, list_devices
from pipeline.infra.database import psycopg_connection
from tests.support.helpers import new_user


@pytest.mark.parametrize(
    "raw_name",
    [r"Anna\u0000s Watch", r"\u001b[31mWatch", r"Watch\ud800", r"Watch\n"],
    ids=["NUL", "escape", "unpaired surrogate", "newline"],
)
def test_a_device_name_with_control_characters_is_422(engine: Engine, raw_name: str) -> None:
    user = new_user(engine)
    with psycopg_connection(engine) as conn:
        key = create_api_key(conn, user, False)
    with TestClient(create_app(engine), raise_server_exceptions=False) as client:
        response = client.put(
            "/v1/me/devices/watch-1",
            content=f'{{"deviceClass": "watch", "name": "{raw_name}"}}',  # JSON escapes, as a client sends them
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        accepted = client.put(
            "/v1/me/devices/watch-1",
            json={"deviceClass": "watch", "name": "Anna\u2019s Watch \u231a"},
            headers={"Authorization": f"Bearer {key}"},
        )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "name"]
    assert accepted.status_code == 201
    with psycopg_connection(engine) as conn:
        assert [d.name for d in list_devices(conn, user)] == ["Anna\u2019s Watch \u231a"]
