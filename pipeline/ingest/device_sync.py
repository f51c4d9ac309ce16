"""Device sync (the seed's ``POST /devices/:id/sync``): land a batch of samples from one of the user's devices,
idempotently.

The first request with a given idempotency key (the header, or a hash of the body when absent) lands its samples
and stores its response in the same transaction; every retry gets that response back and lands nothing. Concurrent
identical requests queue on the unique (user, key) row: one lands, the others wait for its commit and replay it.

Samples have the NDJSON fields of `pipeline.ingest.generic`. A sample's class is its own ``deviceClass``; else
manual when typed in; else the class its ``sourceDevice`` names (the seed's words: a phone app may sync what the
watch measured); else the registered device's class. Its zone: ``timezone``, else a non-zero offset it is written
with, else (``Z``, ``+00:00``) the user's zone history and home zone.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pipeline.devices import DeviceClass
from pipeline.infra.database import Connection
from pipeline.ingest.generic import to_incoming
from pipeline.ingest.landing import LandingSplit, split_for_landing
from pipeline.ingest.store import create_batch, finish_batch, land_chunk

MAX_SAMPLES_PER_REQUEST = 10_000
MAX_ERROR_DETAILS = 100


class DeviceNotFoundError(LookupError):
    pass


class IdempotencyConflictError(ValueError):
    """The idempotency key was used before with a different request body."""


@dataclass(frozen=True)
class SyncOutcome:
    response: dict[str, Any]
    replayed: bool


def request_hash(device_id: str, samples: list[Any]) -> str:
    canonical = json.dumps({"device": device_id, "samples": samples}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def sync_samples(
    conn: Connection, user_id: str, device_id: str, samples: list[Any], idempotency_key: str | None
) -> SyncOutcome:
    """Land ``samples`` for the user's device. ``conn`` must not be in a transaction (this opens one)."""
    body_hash = request_hash(device_id, samples)
    key = idempotency_key or f"content:{body_hash}"
    with conn.transaction():
        device = conn.execute(
            "SELECT device_class, name FROM app.devices WHERE user_id = %s AND device_id = %s", (user_id, device_id)
        ).fetchone()
        if device is None:
            raise DeviceNotFoundError(device_id)
        claimed = conn.execute(
            """INSERT INTO app.sync_requests (user_id, idempotency_key, device_id, request_hash)
               VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1""",
            (user_id, key, device_id, body_hash),
        ).fetchone()
        if claimed is None:
            return _replay(conn, user_id, key, body_hash)
        response = _land(conn, user_id, device_id, str(device[0]), str(device[1]), samples)
        conn.execute(
            "UPDATE app.sync_requests SET response = %s, batch_id = %s WHERE user_id = %s AND idempotency_key = %s",
            (json.dumps(response), response["batchId"], user_id, key),
        )
        conn.execute(
            "UPDATE app.devices SET last_sync_at = now() WHERE user_id = %s AND device_id = %s", (user_id, device_id)
        )
    return SyncOutcome(response, replayed=False)


def _replay(conn: Connection, user_id: str, key: str, body_hash: str) -> SyncOutcome:
    row = conn.execute(
        "SELECT request_hash, response FROM app.sync_requests WHERE user_id = %s AND idempotency_key = %s",
        (user_id, key),
    ).fetchone()
    assert row is not None and row[1] is not None  # the claiming transaction committed both together
    if row[0] != body_hash:
        raise IdempotencyConflictError(key)
    return SyncOutcome(dict(row[1]), replayed=True)  # type: ignore[call-overload]


def _land(
    conn: Connection, user_id: str, device_id: str, device_class: str, device_name: str, samples: list[Any]
) -> dict[str, Any]:
    batch_id = create_batch(conn, user_id, "device_sync", device_id)
    positions = [i for i, sample in enumerate(samples) if isinstance(sample, dict)]
    incoming = to_incoming(pd.DataFrame([samples[i] for i in positions], index=positions), user_id)
    incoming["user_id"] = user_id  # a device syncs for its owner only, whatever the body says
    incoming["device"] = device_id
    names = incoming["source_name"] if "source_name" in incoming else pd.Series(None, index=incoming.index)
    incoming["source_name"] = names.where(names.notna() & (names.astype(str) != ""), device_name)
    # a sample's own deviceClass or seed word (a phone app syncing what the watch measured) outranks the device's
    split = split_for_landing(incoming, "ISO8601", unnamed_class=DeviceClass(device_class))
    not_objects = [i for i in range(len(samples)) if not isinstance(samples[i], dict)]
    rejected = pd.concat(
        [
            split.rejected,
            pd.DataFrame(
                {
                    "user_id": user_id,
                    "reason": "sample is not a JSON object",
                    "payload": [json.dumps({"sample": samples[i]}, default=str) for i in not_objects],
                },
                index=not_objects,
            ),
        ]
    ).sort_index()
    split = LandingSplit(split.accepted, rejected)
    details = [
        {"index": int(index), "sample": samples[int(index)], "error": reason}
        for index, reason in zip(split.rejected.index[:MAX_ERROR_DETAILS], split.rejected["reason"], strict=False)
    ]
    counts = land_chunk(conn, batch_id, split)
    finish_batch(conn, batch_id, counts)
    response: dict[str, Any] = {
        "batchId": batch_id,
        "synced": counts.landed,
        "duplicates": counts.duplicates,
        "errors": counts.rejected,
    }
    if details:
        response["errorDetails"] = details
    return response
