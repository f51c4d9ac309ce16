"""`GET /v1/me/sync-status`: Server-Sent Events saying how the caller's batches go (accepted -> landed ->
computed, with counts), for a device's app to show its sync's progress.

The stream polls the database every ``HEALTHPIPE_SYNC_STATUS_POLL_SECONDS`` on a connection borrowed for that poll
only (in a worker thread: the event loop never waits on the database), and holds none in between. It ends when the
client goes away (the server cancels it) or after ``HEALTHPIPE_SYNC_STATUS_MAX_SECONDS``, so that proxies and
workers can recycle connections; the `retry` hint and the events' ids let an EventSource reconnect and resume
(``Last-Event-ID``). FastAPI's event stream sends a ``: ping`` comment after 15 s without an event.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
import psycopg
import sqlalchemy.exc
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, status
from fastapi.sse import EventSourceResponse, ServerSentEvent

from api.auth import CountedKeyDep, authenticate, user_of
from api.deps import Connections, ConnectionsDep
from api.errors import KEYED_ROUTE_RESPONSES, UNPROCESSABLE, Problem
from api.queries import sync_status as queries
from api.schemas.sync_status import BatchStatus
from api.sync_status import BatchSnapshot, StatusTracker, parse_event_id

RETRY_MILLISECONDS = 3_000
DATABASE_UNAVAILABLE = (psycopg.OperationalError, sqlalchemy.exc.OperationalError)
DEVICE_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"


@dataclass(frozen=True)
class StreamTiming:
    poll_seconds: float
    max_seconds: float


class OpenStreams:
    """How many sync-status streams this process is serving (their generators not yet ended)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def add(self, delta: int) -> None:
        with self._lock:
            self.count += delta


OPEN_STREAMS = OpenStreams()


class StatusEventStream(EventSourceResponse):
    """FastAPI's event stream, documented with its error answers as what they are, JSON: FastAPI documents a
    route's other answers in its response class's media type, which this leaves unset (the stream itself is
    documented as `text/event-stream` either way)."""

    media_type = None  # type: ignore[assignment]


def _event(**fields: Any) -> Any:
    """A `ServerSentEvent`, typed Any: yielded from a stream of `BatchStatus` (what the OpenAPI document shows as
    each event's data), FastAPI sends it as the event it is."""
    return ServerSentEvent(**fields)


router = APIRouter(prefix="/me/sync-status", tags=["me"], responses=KEYED_ROUTE_RESPONSES)


@dataclass(frozen=True)
class Subject:
    user_id: str
    device_id: str | None
    batch_id: int | None


def get_subject(
    key: CountedKeyDep,
    connections: ConnectionsDep,
    device_id: Annotated[str | None, Query(pattern=DEVICE_PATTERN, description="only this device's syncs")] = None,
    batch_id: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="only this batch")] = None,
) -> Subject:
    """The caller and what it follows, checked on a connection returned before the stream starts."""
    with connections() as conn:
        user_id = user_of(authenticate(conn, key).principal)
        if device_id is not None and not queries.device_exists(conn, user_id, device_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no device {device_id!r}")
        if batch_id is not None and not queries.recent_batches(conn, user_id, None, batch_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no batch {batch_id} of yours")
    return Subject(user_id, device_id, batch_id)


def timing(request: Request) -> StreamTiming:
    found: StreamTiming = request.app.state.sync_status_timing
    return found


def poll(connections: Connections, subject: Subject, tracker: StatusTracker) -> list[BatchSnapshot]:
    """One read of the subject's batches, on a connection returned as soon as it is done."""
    with connections() as conn:
        return queries.snapshots(conn, subject.user_id, subject.device_id, subject.batch_id, tracker)


@router.get(
    "",
    response_class=StatusEventStream,
    summary="Server-Sent Events: how the caller's batches go (accepted, landed, computed)",
    responses={
        404: {"description": "The device or batch is not the caller's", "model": Problem},
        422: UNPROCESSABLE,
    },
)
async def get_sync_status(
    request: Request,
    subject: Annotated[Subject, Depends(get_subject)],
    connections: ConnectionsDep,
    last_event_id: Annotated[
        str | None, Header(max_length=100, description="the last event's id, to resume after it")
    ] = None,
) -> AsyncIterator[BatchStatus]:
    """Without filters, the caller's batches started in the last two days (at most 100): first each one's current
    state, then every change. Computed: every user-day its samples fall on (their local start day) was computed
    after it landed (a batch with nothing new to compute is computed as it lands)."""
    settings = timing(request)
    tracker = StatusTracker(parse_event_id(last_event_id))
    deadline = time.monotonic() + settings.max_seconds
    OPEN_STREAMS.add(1)
    try:
        yield _event(comment="sync status", retry=RETRY_MILLISECONDS)
        while True:
            try:
                snapshots = await anyio.to_thread.run_sync(poll, connections, subject, tracker)
            except DATABASE_UNAVAILABLE:
                # kept open through an outage (heartbeats go on): an EventSource that reconnected would meet the
                # 503 and give up for good
                snapshots = []
            for event in tracker.events(snapshots):
                yield _event(event=event.status.state.value, id=event.id, data=event.status)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            await anyio.sleep(min(settings.poll_seconds, remaining))
    finally:
        OPEN_STREAMS.add(-1)
