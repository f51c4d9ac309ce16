"""``DELETE /v1/me`` on the read API's warehouse (tests/support/read_api.py): only with ``confirm`` repeating the
caller's id, and then the caller is gone everywhere: their key answers 401 (a summary cached a moment before
included), their share link 404, the other user reads as before, and a user created again under the same id starts
empty, whatever data version it reaches."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.engine import URL

from api.main import create_app
from pipeline import data_version
from pipeline.accounts import create_api_key, create_user
from pipeline.infra.database import psycopg_connection
from pipeline.infra.settings import Settings
from tests.support.read_api import ReadWorld, bearer, build_read_world


@pytest.fixture
def erasable(make_database: Callable[[], URL], tmp_path: Path) -> Iterator[tuple[ReadWorld, TestClient]]:
    """A read warehouse of its own (the erasure changes it) and the app over it."""
    url = make_database()
    world = build_read_world(url, tmp_path / "dagster_home" / "dbt" / "target")
    settings = Settings(
        database_url=SecretStr(url.render_as_string(hide_password=False)), dagster_home=tmp_path / "dagster_home"
    )
    with TestClient(create_app(world.engine, settings)) as client:
        yield world, client
    world.engine.dispose()


def summary(client: TestClient, key: str) -> httpx.Response:
    return client.get("/v1/me/summary", params={"date": "2024-05-01"}, headers=bearer(key))


def steps(answer: httpx.Response) -> list[float]:
    return [m["value"] for m in answer.json()["metrics"] if m["metric"] == "STEPS"]


def test_only_a_confirmed_request_of_the_users_own_key_erases(erasable: tuple[ReadWorld, TestClient]) -> None:
    world, client = erasable
    assert client.delete("/v1/me", headers=bearer(world.user_key)).status_code == 422  # no confirm
    wrong = client.delete("/v1/me", params={"confirm": world.other}, headers=bearer(world.user_key))
    assert wrong.status_code == 422 and "confirm" in wrong.json()["detail"]
    admin = client.delete("/v1/me", params={"confirm": world.user}, headers=bearer(world.admin_key))
    assert admin.status_code == 403
    assert client.delete("/v1/me", params={"confirm": world.user}).status_code == 401  # no key
    assert steps(summary(client, world.user_key)) == [6000.0]  # nothing was erased


def test_after_the_erasure_the_key_the_cache_and_the_share_link_serve_nothing(
    erasable: tuple[ReadWorld, TestClient],
) -> None:
    world, client = erasable
    first, cached = summary(client, world.user_key), summary(client, world.user_key)
    assert steps(first) == steps(cached) == [6000.0] and first.headers["etag"] == cached.headers["etag"]
    share = client.post(
        "/v1/me/shares",
        json={"recipient": "Dr. Jansen", "types": ["STEPS"], "start": "2024-05-01", "end": "2024-05-02"},
        headers=bearer(world.user_key),
    )
    code = share.json()["code"]
    assert client.get(f"/v1/shared/{code}").status_code == 200
    with psycopg_connection(world.engine) as conn:
        version = data_version.current(conn, world.user)

    answer = client.delete("/v1/me", params={"confirm": world.user}, headers=bearer(world.user_key))

    assert answer.status_code == 200, answer.text
    body = answer.json()
    # read_api.DAILY: 7 daily rows; 2 hourly rows; 2 keys (the user's, and none of the admin's); 1 share
    assert body["rowsRemoved"]["marts.daily"] == 7 and body["rowsRemoved"]["marts.hourly"] == 2
    assert body["rowsRemoved"]["app.api_keys"] == 1 and body["rowsRemoved"]["app.shares"] == 1
    assert body["rowsRemoved"]["app.users"] == 1 and body["dataKeyDestroyed"] is False
    assert (body["cohortDaysRecomputed"], body["scoreDaysRecomputed"]) == (3, 0)  # 04-30..05-02; none scored
    assert summary(client, world.user_key).status_code == 401
    assert summary(client, world.user_key).json()["detail"] == "invalid or revoked API key"
    assert client.get(f"/v1/shared/{code}").status_code == 404
    assert steps(summary(client, world.other_key)) == [12345.0]  # the other user's day, as before
    with psycopg_connection(world.engine) as conn:
        (requested_by,) = conn.execute("SELECT requested_by FROM app.erasures").fetchone()  # type: ignore[misc]
    assert requested_by == f"api-key:{world.user_key[:11]}"

    # the same id again: a new person, whose answers are never the erased user's, even at the same data version
    with psycopg_connection(world.engine) as conn:
        create_user(conn, world.user, "Europe/Amsterdam")
        key = create_api_key(conn, world.user)
        for _ in range(version):
            data_version.advance(conn, [world.user])
        assert data_version.current(conn, world.user) == version
    again = summary(client, key)
    assert again.status_code == 200 and steps(again) == []
    assert again.headers["etag"] != first.headers["etag"]
