"""Liveness and readiness: is the database reachable and at the schema version this code expects."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from api.deps import EngineDep
from api.errors import INTERNAL
from api.outage import RETRY_AFTER_SECONDS
from api.schemas.health import HealthResponse
from pipeline.infra.migrations import discover_migrations, probe_schema_version

router = APIRouter(tags=["health"])


# The one route without the database dependency: an unreachable database is this route's answer (503), while a
# dependency that cannot connect fails the request before any route runs.
@router.get(
    "/health",
    response_model=HealthResponse,
    summary="Service and database health",
    responses={
        503: {
            "model": HealthResponse,
            "description": "The database is unreachable, not migrated or at another schema version",
            "headers": {"Retry-After": {"description": "seconds before retrying", "schema": {"type": "string"}}},
        },
        500: INTERNAL,
    },
)
def health(engine: EngineDep, response: Response) -> HealthResponse:
    expected = discover_migrations()[-1].version
    version = probe_schema_version(engine)
    if version is None:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
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
