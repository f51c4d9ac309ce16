"""The audit trail as a user sees their own (`GET /v1/me/audit`)."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import Field

from api.schemas.base import CamelModel


class AuditEntryOut(CamelModel):
    id: int = Field(description="the entry's id; pass the last one of a page as `before` for the next")
    at: dt.datetime = Field(description="when the read was answered")
    channel: str = Field(description="api (an API key), share (a share link), cli (a command) or pipeline")
    key_id: int | None = Field(description="which API key read (its id)")
    key_prefix: str | None = Field(
        description="that key's public prefix, as `healthpipe keys list` shows it; null once the key is deleted"
    )
    share_id: uuid.UUID | None = Field(description="which share link was used (its id, never its code)")
    route: str = Field(description="the route's template (`/v1/users/{user_id}/summary`) or the command")
    method: str = Field(description="HTTP method, or RUN for a command")
    status: int = Field(description="HTTP status of the answer (304: revalidated, nothing sent); 0 for a command")
    records: int | None = Field(description="how many records the answer held; null where not counted")


class AuditPage(CamelModel):
    entries: list[AuditEntryOut] = Field(description="newest first")
    next_before: int | None = Field(description="`before` for the next (older) page; null on the last page")
