"""Admin-only figures of the whole pipeline."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import DbDep
from api.errors import INTERNAL, NOT_ADMIN, RATE_LIMITED, UNAUTHORIZED, UNAVAILABLE
from api.queries import admin as queries
from api.schemas.admin import AdminStats, AssetFreshness, IngestLag, RejectionReason
from api.subject import AdminDep

router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    responses={401: UNAUTHORIZED, 403: NOT_ADMIN, 429: RATE_LIMITED, 500: INTERNAL, 503: UNAVAILABLE},
)


@router.get("/stats", response_model=AdminStats, summary="Freshness, user-days, rejection rates and ingest lag")
def stats(admin: AdminDep, conn: DbDep) -> AdminStats:
    """When each asset's table was last written (from the tables' own time stamps), the user-days computed, the
    rejections by stage and reason with their rates, and how long landed batches have waited for the pipeline."""
    days = queries.user_days(conn)
    return AdminStats(
        assets=[AssetFreshness(**row) for row in queries.last_computed(conn)],
        user_days=days["user_days"],
        users=days["users"],
        rejections=[RejectionReason(**row) for row in queries.rejections(conn)],
        ingest_lag=IngestLag(**queries.ingest_lag(conn)),
    )
