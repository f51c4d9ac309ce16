"""What a share link shows, to anyone holding its code (no key): the daily aggregates of the shared types over the
shared dates, from marts.daily, as `/v1/me/aggregates?period=day` answers them. Nothing else of the owner's: not
their id, not the recipient the link was made for. The code is a secret in the path: the access log shows the path
redacted (api/access_log.py).

Revoking a share advances its owner's data version, expiring does not (it is only time passing): an answer kept for
reuse must not be served past its `expiresAt`, nor without looking the code up again."""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, HTTPException, Response, status

from api import audit
from api.deps import DbDep
from api.errors import INTERNAL, NO_SUCH_LINK, RATE_LIMITED, UNAVAILABLE
from api.queries import aggregates as aggregate_queries
from api.queries import shares as queries
from api.rate_limits import limit_per_client
from api.schemas.reads import Period
from api.schemas.shares import SharedData
from api.share_codes import could_be_a_code
from pipeline.catalog import METRICS

# keyless: counted per client address, so guessing codes is slow and one client cannot drain the database
router = APIRouter(
    prefix="/shared",
    tags=["shared"],
    dependencies=[Depends(limit_per_client)],
    responses={429: RATE_LIMITED, 500: INTERNAL, 503: UNAVAILABLE},
)

NO_SUCH_LINK_DETAIL = "no such share link: it may have expired or been revoked"
NOT_STORED = {"Cache-Control": "no-store"}  # a revoked link must not live on in a browser's or a proxy's cache


@router.get(
    "/{code}",
    response_model=SharedData,
    summary="The data a share link shows (no key)",
    responses={
        200: {"headers": {"Cache-Control": {"description": "no-store", "schema": {"type": "string"}}}},
        404: NO_SUCH_LINK,
    },
)
def get_shared(code: str, conn: DbDep, response: Response) -> SharedData:
    """The shared types' daily points over the shared dates, and when the link expires. A code that is unknown,
    expired or revoked answers the same 404."""
    share = queries.live_share(conn, code) if could_be_a_code(code) else None
    if share is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NO_SUCH_LINK_DETAIL, headers=NOT_STORED)
    audit.note_share(share["share_id"], share["user_id"])  # the share's id, never its code
    metrics = [name for name in share["metrics"] if name in METRICS]  # a type since dropped from the catalogue: none
    start, end = share["start_date"], share["end_date"]
    types, points = aggregate_queries.series_json(conn, share["user_id"], metrics, "day", start, end)
    response.headers.update(NOT_STORED)
    audit.note_records(points)
    return SharedData(
        period=Period.DAY,
        start=start,
        end=end,
        expires_at=share["expires_at"],
        types=json.loads(types),  # validated into the answer's model: a public route, seldom asked
    )
