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
