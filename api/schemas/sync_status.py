"""The events of `GET /v1/me/sync-status`."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from api.schemas.base import CamelModel


class BatchState(StrEnum):
    """Where a batch is: `accepted` (recorded, samples being landed), `landed` (in the raw layer, counted),
    `computed` (every user-day its samples fall on computed since it landed), or `failed` (an import that failed or
    whose process died; what it landed stays)."""

    accepted = "accepted"
    landed = "landed"
    computed = "computed"
    failed = "failed"


class BatchStatus(CamelModel):
    """One state change of one of the caller's ingest batches (a device sync or an import). Counts are null where
    the state does not know them yet."""

    batch_id: int
    state: BatchState
    source: str = Field(description="device_sync, apple_health, ndjson, csv or synthetic")
    device_id: str | None = Field(description="the device of a device sync; null for an import")
    samples: int | None = Field(description="samples the batch received; null while an import is still reading")
    landed: int | None = Field(description="samples landed (new); from `landed` on")
    duplicates: int | None = Field(description="samples already landed before (a retry, a re-import)")
    rejected: int | None = Field(description="samples refused, kept in quarantine with the reason")
    days: int | None = Field(description="user-days the landed samples fall on (their local start day)")
    computed_days: int | None = Field(description="of those, the days computed since the batch landed")
    accepted_at: datetime
    landed_at: datetime | None
    computed_at: datetime | None = Field(description="when the last of its days was computed")
