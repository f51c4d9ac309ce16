"""The admin statistics."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from api.schemas.base import CamelModel


class AssetFreshness(CamelModel):
    asset: str = Field(examples=["deduplicated_samples"])
    table: str = Field(examples=["core.partition_stats"])
    last_computed_at: dt.datetime | None = Field(description="the latest row written; null: none yet")


class RejectionReason(CamelModel):
    stage: str = Field(description="landing (raw.quarantine) or validation (core.rejections)", examples=["landing"])
    reason: str
    count: int
    rate: float | None = Field(
        description="of the records the stage saw: read by ingest batches (landing), raw rows of computed days "
        "(validation)"
    )


class IngestLag(CamelModel):
    waiting_batches: int = Field(description="finished batches that landed samples after their days were computed")
    oldest_waiting_since: dt.datetime | None
    lag_seconds: float | None = Field(description="age of the oldest waiting batch; null: nothing waits")


class AdminStats(CamelModel):
    assets: list[AssetFreshness]
    user_days: int = Field(description="user-days computed (core.partition_stats)")
    users: int = Field(description="users with at least one computed day")
    rejections: list[RejectionReason]
    ingest_lag: IngestLag
