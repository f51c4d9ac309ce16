"""The read API's audit trail: one ``app.audit_log`` row per GET that read a user's data, written in batches.

How a request becomes a row, at a cost of a few microseconds to it:
- `AuditMiddleware` gives every GET (and HEAD) an `AuditContext` in a context variable, which the dependencies
  fill as they resolve: `api.auth` notes the key, `api.subject` (and `user_of`) whose data, the share route the
  share, `api.cached_reads` and the other routes how many records they answered.
- When the answer has been sent, a request that authenticated (a key, or a live share code) becomes an
  `AuditEntry` with the route's template and the status, appended to this process's `AuditBuffer`. Requests that
  never got that far (no key, a bad key, an unknown code, a rate-limited client) read nothing and leave no row.
  Every authenticated GET is audited unless its route is in `UNAUDITED_ROUTES` (reads of no one's data): a new route
  is audited without anyone remembering to.
- A thread writes the buffer with one COPY every ``HEALTHPIPE_AUDIT_FLUSH_SECONDS`` (and at once past
  `FLUSH_AT_ROWS`); the app's shutdown writes what is left. A clean stop loses nothing; a killed process (SIGKILL,
  out of memory, power loss) loses the rows of its last flush interval. While the database refuses them the rows
  wait, up to ``HEALTHPIPE_AUDIT_MAX_PENDING``; past that the oldest are dropped and the log says how many.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import threading
import uuid
from collections import deque
from dataclasses import dataclass

from fastapi import FastAPI
from sqlalchemy import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import route_template
from pipeline.audit.entries import AuditEntry, Channel, write_entries
from pipeline.infra.database import psycopg_connection
from pipeline.infra.settings import Settings

logger = logging.getLogger("api.audit")

AUDITED_METHODS = frozenset({"GET", "HEAD"})
# Keyed GET routes that read no user's data: the metric catalogue is the same for every key.
UNAUDITED_ROUTES = frozenset({"/v1/metrics"})
FLUSH_AT_ROWS = 5_000  # a burst past this many rows is written at once rather than at the next tick


@dataclass
class AuditContext:
    """What a request's dependencies learn about the read; mutable, shared by the request's threads."""

    key_id: int | None = None
    share_id: uuid.UUID | None = None
    user_id: str | None = None
    records: int | None = None

    @property
    def channel(self) -> Channel | None:
        if self.key_id is not None:
            return "api"
        if self.share_id is not None:
            return "share"
        return None


_current: contextvars.ContextVar[AuditContext | None] = contextvars.ContextVar("healthpipe_audit", default=None)


def current() -> AuditContext | None:
    """The request's audit context; None outside an audited request (a write, a test calling code directly)."""
    return _current.get()


def note_key(key_id: int) -> None:
    if (context := _current.get()) is not None:
        context.key_id = key_id


def note_user(user_id: str) -> None:
    """Whose data the request reads."""
    if (context := _current.get()) is not None:
        context.user_id = user_id


def note_share(share_id: uuid.UUID, user_id: str) -> None:
    if (context := _current.get()) is not None:
        context.share_id, context.user_id = share_id, user_id


def note_records(records: int | None) -> None:
    """How many records the answer holds (points, insights, devices...; 0 for a 304)."""
    if (context := _current.get()) is not None:
        context.records = records


class AuditBuffer:
    """Entries waiting to be written, and the thread that writes them. ``add`` is a deque append (thread-safe,
    no lock on the request's path)."""

    def __init__(self, flush_seconds: float, max_pending: int) -> None:
        self.flush_seconds = flush_seconds
        self.max_pending = max_pending
        self._pending: deque[AuditEntry] = deque()
        self._engine: Engine | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._flushing = threading.Lock()
        self._thread: threading.Thread | None = None
        self.dropped = 0

    def add(self, entry: AuditEntry) -> None:
        self._pending.append(entry)
        if len(self._pending) >= FLUSH_AT_ROWS:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def start(self, engine: Engine) -> None:
        self._engine = engine
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self.flush()

    def flush(self) -> int:
        """Write every pending entry with one COPY; how many were written. On a database error they stay pending
        (the oldest dropped past ``max_pending``) for the next flush."""
        with self._flushing:
            batch: list[AuditEntry] = []
            while self._pending:  # popleft is atomic: entries added meanwhile wait for the next flush
                batch.append(self._pending.popleft())
            if not batch or self._engine is None:
                self._pending.extendleft(reversed(batch))
                return 0
            try:
                with psycopg_connection(self._engine) as conn:
                    write_entries(conn, batch, wait_for_disk=False)
            except Exception as exc:  # any failure: keep the rows, and say so without the message
                self._pending.extendleft(reversed(batch))
                self._drop_over_limit()
                logger.warning(
                    "audit log: %d rows wait, the database refused them (%s)", len(self._pending), type(exc).__name__
                )
                return 0
            return len(batch)

    def _drop_over_limit(self) -> None:
        over = len(self._pending) - self.max_pending
        if over > 0:
            for _ in range(over):
                self._pending.popleft()
            self.dropped += over
            logger.error("audit log: %d rows dropped so far (more than %d waiting)", self.dropped, self.max_pending)

    def close(self) -> None:
        """Stop the writer and write what is left (the app's shutdown)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None
        self.flush()


class AuditMiddleware:
    """Gives each GET an `AuditContext` and, once it is answered, turns an authenticated one into an entry."""

    def __init__(self, app: ASGIApp, buffer: AuditBuffer) -> None:
        self.app = app
        self.buffer = buffer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in AUDITED_METHODS:
            await self.app(scope, receive, send)
            return
        context = AuditContext()
        token = _current.set(context)
        status = 500  # what the client gets when the app fails before it answers

        async def noting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, noting_send)
        finally:
            _current.reset(token)
            channel = context.channel
            if channel is not None:
                route = route_template(scope)
                if route not in UNAUDITED_ROUTES:
                    self.buffer.add(
                        AuditEntry(
                            at=dt.datetime.now(dt.UTC),
                            channel=channel,
                            route=route,
                            method=str(scope["method"]),
                            status=status,
                            user_id=context.user_id,
                            key_id=context.key_id,
                            share_id=context.share_id,
                            records=context.records,
                        )
                    )


def install_audit(app: FastAPI, settings: Settings) -> AuditBuffer | None:
    """The middleware and its buffer (started with the app's engine by the lifespan); None when the audit is off."""
    if not settings.audit_log:
        app.state.audit = None
        return None
    buffer = AuditBuffer(settings.audit_flush_seconds, settings.audit_max_pending)
    app.add_middleware(AuditMiddleware, buffer=buffer)
    app.state.audit = buffer
    return buffer
