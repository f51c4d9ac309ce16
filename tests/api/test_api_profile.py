"""The caller's profile over the API: what is sent is stored (null clears, what is left out stays), a bad value is a
422 naming the field and the rule, a real change advances the user's data version and a repeated one does not."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from pipeline import data_version
from pipeline.accounts import create_api_key
from pipeline.infra.database import psycopg_connection
from tests.support.helpers import new_user


@pytest.fixture(scope="module")
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as test_client:
        yield test_client


def caller(engine: Engine) -> tuple[str, dict[str, str]]:
    user = new_user(engine, prefix="p")
    with psycopg_connection(engine) as conn:
        key = create_api_key(conn, user)
    return user, {"Authorization": f"Bearer {key}"}


def version(engine: Engine, user: str) -> int:
    with psycopg_connection(engine) as conn:
        return data_version.current(conn, user)


def test_a_new_user_has_an_empty_profile(client: TestClient, engine: Engine) -> None:
    user, headers = caller(engine)
    answer = client.get("/v1/me/profile", headers=headers)
    assert answer.status_code == 200
    assert answer.json() == {
        "userId": user,
        "displayName": None,
        "givenName": None,
        "familyName": None,
        "gender": None,
        "birthDate": None,
    }


def test_patch_sets_what_is_sent_keeps_the_rest_and_null_clears(client: TestClient, engine: Engine) -> None:
    user, headers = caller(engine)
    first = client.patch(
        "/v1/me/profile",
        json={"displayName": "Jo", "givenName": "Johanna", "familyName": "Smit", "gender": "other"},
        headers=headers,
    )
    assert first.status_code == 200
    assert version(engine, user) == 1
    second = client.patch("/v1/me/profile", json={"birth_date": "1975-06-30", "familyName": None}, headers=headers)
    assert second.json() == {
        "userId": user,
        "displayName": "Jo",
        "givenName": "Johanna",
        "familyName": None,
        "gender": "other",
        "birthDate": "1975-06-30",
    }
    assert version(engine, user) == 2
    # the same values again: nothing changes, not even the data version (ETags stay valid)
    again = client.patch("/v1/me/profile", json={"birthDate": "1975-06-30", "gender": "other"}, headers=headers)
    assert again.json() == second.json()
    assert version(engine, user) == 2
    assert client.get("/v1/me/profile", headers=headers).json() == second.json()


TOMORROW_EVERYWHERE = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=14, days=1)).date().isoformat()


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"gender": "f"}, "gender", "'male', 'female', 'other' or 'unknown'"),
        ({"birthDate": TOMORROW_EVERYWHERE}, "birthDate", "is in the future"),
        ({"birthDate": "1899-12-31"}, "birthDate", "is before 1900-01-01"),
        ({"birthDate": "1990-02-30"}, "birthDate", "valid date"),
        ({"givenName": "x" * 101}, "givenName", "at most 100 characters"),
        ({"familyName": ""}, "familyName", "at least 1 character"),
        ({"familyName": "   "}, "familyName", "must not be empty"),
        ({"displayName": "Jo\u0000"}, "displayName", "control characters"),
        ({"gendre": "male"}, "gendre", "Extra inputs are not permitted"),
    ],
)
def test_a_bad_value_is_a_422_naming_the_field_and_the_rule(
    client: TestClient, engine: Engine, body: dict[str, Any], field: str, message: str
) -> None:
    user, headers = caller(engine)
    answer = client.patch("/v1/me/profile", json=body, headers=headers)
    assert answer.status_code == 422
    problem = answer.json()["detail"][0]
    assert problem["loc"] == ["body", field]
    assert message in problem["msg"]
    assert version(engine, user) == 0  # nothing written
    assert client.get("/v1/me/profile", headers=headers).json()["gender"] is None


def test_a_key_changes_only_its_own_users_profile(client: TestClient, engine: Engine) -> None:
    anna, anna_headers = caller(engine)
    ben, ben_headers = caller(engine)
    client.patch("/v1/me/profile", json={"givenName": "Ben"}, headers=ben_headers)
    assert client.get("/v1/me/profile", headers=anna_headers).json()["givenName"] is None
    assert client.get("/v1/me/profile", headers=ben_headers).json()["userId"] == ben
    assert client.patch("/v1/me/profile", json={"givenName": "X"}).status_code == 401
    assert version(engine, anna) == 0
