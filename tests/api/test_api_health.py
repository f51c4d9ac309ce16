from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from api.main import create_app
from pipeline.infra.database import create_warehouse_engine
from pipeline.infra.migrations import discover_migrations


def test_health_reports_the_schema_version(engine: Engine) -> None:
    with TestClient(create_app(engine)) as client:
        response = client.get("/health")
    newest = discover_migrations()[-1].version
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "schema_version": newest,
        "expected_schema_version": newest,
    }


def test_health_is_503_on_an_unmigrated_database(make_database: Callable[[], URL]) -> None:
    unmigrated = create_warehouse_engine(make_database())
    try:
        with TestClient(create_app(unmigrated)) as client:
            response = client.get("/health")
    finally:
        unmigrated.dispose()
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


def test_health_is_503_when_the_database_cannot_be_reached(unreachable_engine: Engine) -> None:
    with TestClient(create_app(unreachable_engine)) as client:
        response = client.get("/health")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json() == {
        "status": "unavailable",
        "database": "unreachable or not migrated",
        "schema_version": None,
        "expected_schema_version": discover_migrations()[-1].version,
    }


def test_every_route_answers_an_outage_with_503_and_retry_after(unreachable_engine: Engine) -> None:
    key = {"Authorization": "Bearer hp_notchecked_because_the_database_is_down"}
    sample = {
        "type": "STEPS",
        "value": 1,
        "unit": "count",
        "startDate": "2024-05-01T08:00:00Z",
        "endDate": "2024-05-01T08:10:00Z",
    }
    with TestClient(create_app(unreachable_engine), raise_server_exceptions=False) as client:
        responses = [
            client.get("/v1/me", headers=key),
            client.get("/v1/me/devices", headers=key),
            client.put("/v1/me/devices/w1", headers=key, json={"deviceClass": "watch", "name": "W"}),
            client.post("/v1/me/devices/w1/sync", headers=key, json={"samples": [sample]}),
            client.get("/v1/me/source-priority", headers=key),
        ]
        unauthenticated = client.get("/v1/me")
    assert [r.status_code for r in responses] == [503] * 5
    assert {r.headers.get("Retry-After") for r in responses} == {"5"}
    assert {r.json()["detail"] for r in responses} == {"the database is unavailable; retry later"}
    assert unauthenticated.status_code == 401  # a missing key is still the client's error
