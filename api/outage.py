"""A database outage is a 503 with ``Retry-After`` on every route, never a 500: a client that retries on 503 then
retries an outage, and does not retry a request that failed for what it sent."""

from __future__ import annotations

import psycopg
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

RETRY_AFTER_SECONDS = 5
OUTAGE_DETAIL = "the database is unavailable; retry later"


def outage_response() -> JSONResponse:
    return JSONResponse(
        status_code=503, content={"detail": OUTAGE_DETAIL}, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
    )


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # Connection refused, the server shutting down or a connection lost mid-request; nothing of the request is
    # logged (it may hold health data).
    return outage_response()


def install_outage_handlers(app: FastAPI) -> None:
    """Answer connection failures (psycopg's own, and SQLAlchemy's wrapping of them when a pooled connection is
    borrowed) with 503 and ``Retry-After``."""
    app.add_exception_handler(psycopg.OperationalError, _database_unavailable)
    app.add_exception_handler(sqlalchemy.exc.OperationalError, _database_unavailable)
