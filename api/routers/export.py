"""The caller's data as one archive (pipeline/export/archive.py): everything held about them, streamed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.responses import StreamingResponse

from api import audit
from api.auth import CountedKeyDep, authenticate, user_of
from api.deps import ConnectionsDep
from api.errors import KEYED_ROUTE_RESPONSES, NOT_FOUND
from pipeline.accounts import user_exists
from pipeline.export.archive import MEDIA_TYPE, ExportCounts, archive_chunks

router = APIRouter(prefix="/me/export", tags=["me"], responses={**KEYED_ROUTE_RESPONSES, 404: NOT_FOUND})


def exporting_user(key: CountedKeyDep, connections: ConnectionsDep) -> str:
    """The caller, checked on a connection returned before the archive streams (which borrows its own: a request
    holds one connection at a time, as the sync-status stream does)."""
    with connections() as conn:
        user_id = user_of(authenticate(conn, key).principal)
        if not user_exists(conn, user_id):  # the key's user was deleted since it authenticated
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {user_id!r}")
    return user_id


@router.get(
    "",
    response_class=StreamingResponse,
    summary="Everything held about the caller, as one zip archive",
    responses={
        200: {
            "description": "A zip archive: profile.json, devices.json, api_keys.ndjson, shares.ndjson, samples.ndjson "
            "(the raw samples, in the NDJSON import format), quarantine.ndjson, batches.ndjson, daily.csv, "
            "insights.ndjson, audit.ndjson, fhir/Patient.json, fhir/Observation-bundle.json and manifest.json "
            "(records per file). Sent as it is written: an interrupted download is not a valid archive.",
            "content": {MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
def get_export(user_id: Annotated[str, Depends(exporting_user)], connections: ConnectionsDep) -> StreamingResponse:
    """Audited with the number of records the archive holds (once it has been sent)."""

    def chunks() -> Iterator[bytes]:
        counts = ExportCounts()
        with connections() as own:  # the stream outlives the request's own connection
            yield from archive_chunks(own, user_id, counts)
        audit.note_records(counts.total)

    filename = f"healthpipe-export-{dt.datetime.now(dt.UTC):%Y%m%d}.zip"
    return StreamingResponse(
        chunks(), media_type=MEDIA_TYPE, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )
