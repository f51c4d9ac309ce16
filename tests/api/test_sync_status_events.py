"""From polled batch snapshots to sync-status events (pure: no database)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from api.schemas.sync_status import BatchState
from api.sync_status import BatchSnapshot, StatusTracker, event_id, parse_event_id

T0 = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)
MICROS = 1_795_773_600_000_000  # T0 in microseconds since 1970


def snapshot(batch_id: int = 7, **changes: object) -> BatchSnapshot:
    running = BatchSnapshot(batch_id, "device_sync", "watch-1", "running", 0, 0, 0, 0, T0, None)
    return dataclasses.replace(running, **changes)  # type: ignore[arg-type]


def landed(batch_id: int = 7, days: int = 2, **changes: object) -> BatchSnapshot:
    return snapshot(
        batch_id,
        status="done",
        read=10,
        landed=7,
        duplicates=2,
        rejected=1,
        finished_at=T0 + dt.timedelta(seconds=1),
        days=days,
        **changes,
    )


def states(events: list) -> list[tuple[int, str]]:  # type: ignore[type-arg]
    return [(e.status.batch_id, e.status.state.value) for e in events]


def test_a_fresh_stream_gives_each_batch_its_current_state_then_every_change() -> None:
    tracker = StatusTracker()
    assert states(tracker.events([landed(7), snapshot(8)])) == [(8, "accepted"), (7, "landed")]
    assert tracker.events([landed(7), snapshot(8)]) == []  # nothing changed
    computed_at = T0 + dt.timedelta(minutes=5)
    later = [landed(7, computed_days=2, last_computed_at=computed_at), landed(8, days=0)]
    # batch 8 landed between polls: accepted was sent, so landed, then (nothing to compute) computed at once
    assert states(tracker.events(later)) == [(8, "landed"), (8, "computed"), (7, "computed")]
    assert tracker.settled(7) and tracker.settled(8)


def test_events_are_ordered_by_the_time_of_the_change() -> None:
    tracker = StatusTracker()
    tracker.events([])
    events = tracker.events([landed(9, days=0)])
    assert states(events) == [(9, "accepted"), (9, "landed"), (9, "computed")]
    assert [e.id for e in events] == [f"{MICROS}-9-0", f"{MICROS + 1_000_000}-9-1", f"{MICROS + 1_000_000}-9-2"]


def test_a_batch_is_computed_only_when_all_its_days_are() -> None:
    tracker = StatusTracker()
    tracker.events([landed(7)])
    assert tracker.events([landed(7, computed_days=1, last_computed_at=T0 + dt.timedelta(hours=1))]) == []
    events = tracker.events([landed(7, computed_days=2, last_computed_at=T0 + dt.timedelta(hours=2))])
    (computed,) = events
    assert computed.status.model_dump(by_alias=True, mode="json") == {
        "batchId": 7,
        "state": "computed",
        "source": "device_sync",
        "deviceId": "watch-1",
        "samples": 10,
        "landed": 7,
        "duplicates": 2,
        "rejected": 1,
        "days": 2,
        "computedDays": 2,
        "acceptedAt": "2026-11-27T10:00:00Z",
        "landedAt": "2026-11-27T10:00:01Z",
        "computedAt": "2026-11-27T12:00:00Z",
    }


def test_the_accepted_event_of_a_running_import_knows_no_counts_yet() -> None:
    (accepted,) = StatusTracker().events([snapshot(3, source="ndjson", source_ref="export.ndjson")])
    status = accepted.status
    assert status.state is BatchState.accepted and status.device_id is None
    assert (status.samples, status.landed, status.duplicates, status.rejected, status.days) == (None,) * 5


def test_a_failed_import_ends_its_batch() -> None:
    tracker = StatusTracker()
    tracker.events([snapshot(4)])
    failed = snapshot(4, status="abandoned", read=5, landed=5, finished_at=T0 + dt.timedelta(minutes=1))
    assert states(tracker.events([failed])) == [(4, "failed")]
    assert tracker.settled(4)
    assert tracker.events([failed]) == []


def test_a_resumed_stream_gives_only_the_changes_after_the_last_event_id() -> None:
    done = landed(7, computed_days=2, last_computed_at=T0 + dt.timedelta(hours=2))
    after_landed = parse_event_id(f"{MICROS + 1_000_000}-7-1")
    assert states(StatusTracker(after_landed).events([done, snapshot(8)])) == [(7, "computed")]
    after_accepted = parse_event_id(f"{MICROS}-7-0")
    assert states(StatusTracker(after_accepted).events([done])) == [(7, "landed"), (7, "computed")]


def test_an_event_id_this_api_did_not_send_starts_afresh() -> None:
    for text in (None, "", "abc", "1-2", "1-2-x", "-1-2-3", "9" * 21 + "-1-1"):
        assert parse_event_id(text) is None
    assert parse_event_id(event_id((5, 6, 2))) == (5, 6, 2)
