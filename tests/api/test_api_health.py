from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from api.main import create_app
from pipeline.infra.database import create_warehouse_engine, with_driver
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


def test_health_is_503_when_the_database_cannot_be_reached() -> None:
    nowhere = create_warehouse_engine(with_driver("postgresql://nobody@127.0.0.1:1/nothing", "psycopg"))
    try:
        with TestClient(create_app(nowhere)) as client:
            response = client.get("/health")
    finally:
        nowhere.dispose()
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "database": "unreachable or not migrated",
        "schema_version": None,
        "expected_schema_version": discover_migrations()[-1].version,
    }
