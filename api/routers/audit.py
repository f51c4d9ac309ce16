"""The caller's audit trail: who read their data, when, through which route (api/audit.py writes it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api import audit
from api.auth import CurrentUserDep
from api.deps import DbDep
from api.errors import KEYED_ROUTE_RESPONSES, UNPROCESSABLE
from api.schemas.audit import AuditEntryOut, AuditPage
from pipeline.audit.entries import entries_of

router = APIRouter(prefix="/me/audit", tags=["me"], responses={**KEYED_ROUTE_RESPONSES, 422: UNPROCESSABLE})

MAX_PAGE = 500


@router.get("", response_model=AuditPage, summary="Who read the caller's data: the audit trail, newest first")
def get_audit(
    user_id: CurrentUserDep,
    conn: DbDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="entries per page")] = 100,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="only entries older than this id")] = None,
) -> AuditPage:
    """Every read of the caller's data: by their keys, by an admin key, through their share links, by an export.
    Entries are written within a second or so of the read (in batches). This read is itself an entry."""
    rows = entries_of(conn, user_id, limit + 1, before)
    page = rows[:limit]
    audit.note_records(len(page))
    return AuditPage(
        entries=[
            AuditEntryOut(
                id=row.audit_id,
                at=row.at,
                channel=row.channel,
                key_id=row.key_id,
                key_prefix=row.key_prefix,
                share_id=row.share_id,
                route=row.route,
                method=row.method,
                status=row.status,
                records=row.records,
            )
            for row in page
        ],
        next_before=page[-1].audit_id if len(rows) > limit else None,
    )
