"""The health probe's answer."""

from __future__ import annotations

from pydantic import BaseModel


class HealthResponse(BaseModel):
    status: str
    database: str
    schema_version: int | None
    expected_schema_version: int
