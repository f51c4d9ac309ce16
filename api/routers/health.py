"""Liveness and readiness: is the database reachable and at the schema version this code expects."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.deps import EngineDep
from pipeline.infra.migrations import VERSION_TABLE, discover_migrations

router = APIRouter(tags=["health"])


class HealthResponse(BaseModel):
    status: str
    database: str
    schema_version: int | None
    expected_schema_version: int


@router.get("/health", response_model=HealthResponse, summary="Service and database health")
def health(engine: EngineDep, response: Response) -> HealthResponse:
    expected = discover_migrations()[-1].version
    try:
        with engine.connect() as conn:
            version = conn.execute(text(f"SELECT coalesce(max(version), 0) FROM {VERSION_TABLE}")).scalar_one()
    except SQLAlchemyError:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return HealthResponse(
            status="unavailable",
            database="unreachable or not migrated",
            schema_version=None,
            expected_schema_version=expected,
        )
    if version != expected:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return HealthResponse(
            status="degraded",
            database="schema version mismatch: run `healthpipe db migrate`",
            schema_version=version,
            expected_schema_version=expected,
        )
    return HealthResponse(status="ok", database="ok", schema_version=version, expected_schema_version=expected)
