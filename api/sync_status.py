"""Sync status as events: from what one poll of the database says about a user's batches (`BatchSnapshot`) to the
state changes not sent yet (`StatusTracker`). No I/O here: `api/routers/sync_status.py` polls and streams.

A batch goes accepted -> landed -> computed, or accepted -> failed. Each state has a time (started, finished, the
last of its days computed) and an event id ``<microseconds since 1970>-<batch>-<rank>``: ids grow with the time of
the change, so a client resuming with ``Last-Event-ID`` gets exactly the changes after it (a batch whose days were
recomputed since may say `computed` again, with the later time).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from api.schemas.sync_status import BatchState, BatchStatus

RANKS = {BatchState.accepted: 0, BatchState.landed: 1, BatchState.failed: 1, BatchState.computed: 2}
FAILED_STATUSES = ("failed", "abandoned")
EventKey = tuple[int, int, int]  # microseconds, batch, rank: the order of events and of their ids


@dataclass(frozen=True)
class BatchSnapshot:
    """A batch as one poll read it: its ``app.ingest_batches`` row, and for a finished batch its user-days (None:
    not looked up) with how many were computed since it finished and when the last of them was."""

    batch_id: int
    source: str
    source_ref: str | None
    status: str
    read: int
    landed: int
    duplicates: int
    rejected: int
    started_at: dt.datetime
    finished_at: dt.datetime | None
    days: int | None = None
    computed_days: int = 0
    last_computed_at: dt.datetime | None = None

    def reached(self) -> list[tuple[BatchState, dt.datetime]]:
        """The states it has reached, in order, each with when."""
        states = [(BatchState.accepted, self.started_at)]
        finished = self.finished_at or self.started_at
        if self.status in FAILED_STATUSES:
            states.append((BatchState.failed, finished))
        elif self.status == "done":
            states.append((BatchState.landed, finished))
            if self.days is not None and self.computed_days >= self.days:
                # no day to compute (only duplicates or rejects): computed as it lands
                states.append((BatchState.computed, (self.last_computed_at if self.days else None) or finished))
        return states

    def status_in(self, state: BatchState) -> BatchStatus:
        times = dict(self.reached())
        finished = state is not BatchState.accepted
        return BatchStatus(
            batch_id=self.batch_id,
            state=state,
            source=self.source,
            device_id=self.source_ref if self.source == "device_sync" else None,
            samples=self.read if self.status != "running" else None,
            landed=self.landed if finished else None,
            duplicates=self.duplicates if finished else None,
            rejected=self.rejected if finished else None,
            days=self.days if finished else None,
            computed_days=self.computed_days if finished and self.days is not None else None,
            accepted_at=self.started_at,
            landed_at=times.get(BatchState.landed) or times.get(BatchState.failed),
            computed_at=times.get(BatchState.computed),
        )


@dataclass(frozen=True)
class StatusEvent:
    id: str
    key: EventKey
    status: BatchStatus


def event_id(key: EventKey) -> str:
    return "-".join(map(str, key))


def parse_event_id(text: str | None) -> EventKey | None:
    """The key of a ``Last-Event-ID``; None for none or one this API did not send (the stream starts afresh)."""
    parts = (text or "").strip().split("-")
    if len(parts) != 3 or not all(part.isdigit() and len(part) <= 20 for part in parts):
        return None
    micros, batch, rank = map(int, parts)
    return (micros, batch, rank)


def _micros(at: dt.datetime) -> int:
    return int((at - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1))


class StatusTracker:
    """The changes of one stream: what each batch last said, and which changes are new.

    Fresh (no ``resume_after``), the first poll gives each batch's current state once; later polls every state a
    batch reaches (a sync that lands between two polls says accepted, then landed). Resuming, every change after
    ``resume_after``."""

    def __init__(self, resume_after: EventKey | None = None) -> None:
        self.resume_after = resume_after
        self.sent: dict[int, int] = {}  # batch -> rank of the last state sent (or skipped as before the resume)
        self.done: set[int] = set()  # batches with nothing more to come: computed or failed
        self.days: dict[int, list[dt.date]] = {}  # unsettled landed batch -> its user-days (raw rows never change)
        self._first = True

    def settled(self, batch_id: int) -> bool:
        return batch_id in self.done

    def events(self, snapshots: Iterable[BatchSnapshot]) -> list[StatusEvent]:
        found = []
        for snapshot in snapshots:
            reached = snapshot.reached()
            if self._first and self.resume_after is None:
                reached = reached[-1:]
            for state, at in reached:
                rank = RANKS[state]
                if rank <= self.sent.get(snapshot.batch_id, -1):
                    continue
                self.sent[snapshot.batch_id] = rank
                if state in (BatchState.computed, BatchState.failed):
                    self.done.add(snapshot.batch_id)
                    self.days.pop(snapshot.batch_id, None)
                key = (_micros(at), snapshot.batch_id, rank)
                if self.resume_after is not None and key <= self.resume_after:
                    continue
                found.append(StatusEvent(event_id(key), key, snapshot.status_in(state)))
        self._first = False
        return sorted(found, key=lambda event: event.key)
