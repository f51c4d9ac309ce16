"""Audit entries: one row of ``app.audit_log`` per read of a user's data (and per erasure). An entry names who read
(an API key's id, a share's id, or a command), whose data, the route's template, the outcome and how many records;
never the data, a key or a share code.

Record one from any code with `record` (one INSERT, for a command) or `write_entries` (COPY, for a batch):

    record(conn, AuditEntry.now(channel="cli", route="healthpipe users export", user_id=user_id, records=n))

An erasure records its own with ``user_id=None``: nothing of the person stays in the trail."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from psycopg.rows import class_row

from pipeline.infra.database import Connection

Channel = Literal["api", "share", "cli", "pipeline"]
COMMAND_STATUS = 0  # a command has no HTTP status
_COLUMNS = ("at", "channel", "key_id", "share_id", "user_id", "route", "method", "status", "records")
_COPY = f"COPY app.audit_log ({', '.join(_COLUMNS)}) FROM STDIN"


@dataclass(frozen=True)
class AuditEntry:
    at: dt.datetime
    channel: Channel
    route: str  # the route template (/v1/users/{user_id}/summary) or the command (healthpipe users export)
    method: str = "GET"  # HTTP method, or "RUN" for a command
    status: int = COMMAND_STATUS
    user_id: str | None = None  # whose data; None: no single user's
    key_id: int | None = None
    share_id: uuid.UUID | None = None
    records: int | None = None

    @classmethod
    def now(
        cls,
        channel: Channel,
        route: str,
        user_id: str | None,
        records: int | None = None,
        method: str = "RUN",
        status: int = COMMAND_STATUS,
    ) -> AuditEntry:
        """An entry timed now, by default a command's."""
        return cls(dt.datetime.now(dt.UTC), channel, route, method, status, user_id, None, None, records)

    def row(self) -> tuple[object, ...]:
        return (
            self.at,
            self.channel,
            self.key_id,
            self.share_id,
            self.user_id,
            self.route,
            self.method,
            self.status,
            self.records,
        )


@dataclass(frozen=True)
class StoredEntry:
    """An entry as listed back (`entries_of`)."""

    audit_id: int
    at: dt.datetime
    channel: str
    key_id: int | None
    key_prefix: str | None  # the key's public prefix, as `healthpipe keys list` shows it (None once deleted)
    share_id: uuid.UUID | None
    route: str
    method: str
    status: int
    records: int | None


def write_entries(conn: Connection, entries: Sequence[AuditEntry], *, wait_for_disk: bool = True) -> None:
    """Append ``entries`` with one COPY (in its own transaction unless the caller holds one). ``wait_for_disk``
    False: the commit does not wait for the WAL to reach the disk (PostgreSQL's writer flushes it within a fraction
    of a second): the API's buffer, which flushes every second, then adds no disk flush of its own to the reads it
    runs beside; a crash of the server may lose that fraction of a second, as an unclean stop of the API loses what
    its buffer held."""
    if not entries:
        return
    with conn.transaction(), conn.cursor() as cursor:
        if not wait_for_disk:
            cursor.execute("SET LOCAL synchronous_commit = off")
        with cursor.copy(_COPY.encode()) as copy:
            for entry in entries:
                copy.write_row(entry.row())


def record(conn: Connection, entry: AuditEntry) -> None:
    """Append one entry now (a command's: it runs once, a batch would only delay it)."""
    write_entries(conn, [entry])


def forget_user(conn: Connection, user_id: str) -> int:
    """For an erasure: the user's entries stay (that their data was read, by which key or share, through which route,
    when) but no longer say whose; how many. The API's buffer may still hold a read from just before: erase after
    the user's keys are revoked and the buffer's interval has passed, or run this again at the end."""
    return conn.execute("UPDATE app.audit_log SET user_id = NULL WHERE user_id = %s", (user_id,)).rowcount


def entries_of(conn: Connection, user_id: str, limit: int, before: int | None = None) -> list[StoredEntry]:
    """The user's entries, newest first: at most ``limit``, those with an id below ``before`` when given (the
    previous page's last id: pages stay stable while new entries arrive)."""
    with conn.cursor(row_factory=class_row(StoredEntry)) as cursor:
        return cursor.execute(
            """SELECT a.audit_id, a.at, a.channel, a.key_id, k.prefix AS key_prefix, a.share_id, a.route, a.method,
                      a.status, a.records
               FROM app.audit_log a LEFT JOIN app.api_keys k ON k.key_id = a.key_id
               WHERE a.user_id = %(user)s AND (%(before)s::bigint IS NULL OR a.audit_id < %(before)s)
               ORDER BY a.audit_id DESC LIMIT %(limit)s""",
            {"user": user_id, "before": before, "limit": limit},
        ).fetchall()
