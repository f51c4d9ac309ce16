"""The caller's own account."""

from __future__ import annotations

from pydantic import Field

from api.schemas.base import CamelModel


class Me(CamelModel):
    user_id: str
    display_name: str | None
    home_timezone: str


class Erasure(CamelModel):
    """What `DELETE /v1/me` removed. The key that asked is gone with the rest: every later request with it gets 401."""

    erasure_id: int = Field(description="the erasure's audit row (app.erasures), which names no user")
    rows_removed: dict[str, int] = Field(description="schema.table: the caller's rows deleted from it")
    data_key_destroyed: bool = Field(description="whether a data key of the caller was destroyed (crypto-shredding)")
    dagster_partitions_removed: int = Field(description="the caller's partition keys removed from Dagster (0 or 1)")
    cohort_days_recomputed: int = Field(description="days whose cohort statistics were rebuilt without the caller")
    score_days_recomputed: int = Field(description="days whose health scores were recomputed without the caller")
