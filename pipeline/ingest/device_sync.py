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

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.devices import DeviceClass
from pipeline.infra.database import Connection
from pipeline.ingest.generic import FIELD_NAMES, USER_FIELDS, to_incoming
from pipeline.ingest.landing import LandingSplit, split_for_landing
from pipeline.ingest.sample_checks import UNSTORABLE_REASON, SampleLimits, check_fields, unstorable
from pipeline.ingest.store import create_batch, finish_batch, land_chunk
from pipeline.ingest.sync_body import SyncBody, Unreadable

MAX_SAMPLES_PER_REQUEST = 10_000
MAX_ERROR_DETAILS = 100
ECHO_CHARS = 200  # of a rejected sample's text in its error detail


class DeviceNotFoundError(LookupError):
    pass


class IdempotencyConflictError(ValueError):
    """The idempotency key was used before with a different request body."""


@dataclass(frozen=True)
class SyncOutcome:
    response: dict[str, Any]
    replayed: bool


def body_of(samples: list[Any]) -> SyncBody:
    """A body of decoded samples (callers without the request's text): each sample's text is its JSON."""
    return SyncBody(list(samples), [json.dumps(sample) for sample in samples])


def request_hash(device_id: str, body: SyncBody) -> str:
    """The hash of the samples as canonical JSON (key order and spacing do not count); of their texts as sent when
    they have no canonical form (an integer Python could not decode)."""
    try:
        canonical = json.dumps({"device": device_id, "samples": body.samples}, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        canonical = json.dumps({"device": device_id, "sampleTexts": body.texts}, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def sync_samples(
    conn: Connection,
    user_id: str,
    device_id: str,
    samples: SyncBody | list[Any],
    idempotency_key: str | None,
    limits: SampleLimits | None = None,
) -> SyncOutcome:
    """Land ``samples`` for the user's device. ``conn`` must not be in a transaction (this opens one).

    The response is built and serialized before the transaction commits: a response that could not be sent would
    otherwise be stored and replayed for every retry."""
    body = samples if isinstance(samples, SyncBody) else body_of(samples)
    body_hash = request_hash(device_id, body)
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
        response = _land(conn, user_id, device_id, str(device[0]), str(device[1]), body, limits or SampleLimits())
        stored = json.dumps(response, allow_nan=False)  # raises (and rolls back) if it could not be answered
        conn.execute(
            "UPDATE app.sync_requests SET response = %s, batch_id = %s WHERE user_id = %s AND idempotency_key = %s",
            (stored, response["batchId"], user_id, key),
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


def text_payloads(texts: pa.Array) -> pa.Array:
    """``{"text": <the sample's JSON text>}`` for each text, as JSON (vectorized). The texts are valid JSON, so the
    only characters a JSON string must escape that they can hold raw are backslash, quote and whitespace."""
    escaped = texts
    for raw, escape in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
        escaped = pc.replace_substring(escaped, raw, escape)

    def text(value: str) -> pa.Scalar:
        return pa.scalar(value, escaped.type)

    return pc.binary_join_element_wise(text('{"text":"'), escaped, text('"}'), text(""))


def echo(text: str) -> str:
    """A rejected sample's text as an error detail shows it: cut to `ECHO_CHARS`, the cut marked."""
    return text if len(text) <= ECHO_CHARS else f"{text[:ECHO_CHARS]}... ({len(text):,} characters)"


def _objects(body: SyncBody, user_id: str, rejectable: np.ndarray) -> pd.DataFrame:
    """The samples that are objects (not already rejected) as incoming rows, indexed by their position. Only known
    fields become columns: other keys stay in the sample's text."""
    positions = [i for i, sample in enumerate(body.samples) if isinstance(sample, dict) and not rejectable[i]]
    objects = [body.samples[i] for i in positions]
    keys = set().union(*objects) if objects else set()
    fields = [name for name in FIELD_NAMES if name in keys and name not in USER_FIELDS]
    return to_incoming(pd.DataFrame(objects, columns=fields, index=positions), user_id)


def _whole_sample_reasons(body: SyncBody, texts: pa.Array) -> pd.Series:
    """Per sample (by position), why it cannot become a row at all: undecodable, not an object, or holding what
    PostgreSQL cannot store; '' for the others."""
    kinds = pd.Series(body.samples, dtype=object).map(type)
    reasons = pd.Series("", index=pd.RangeIndex(len(body.samples)), dtype=object)
    reasons[kinds.isin([Unreadable]).to_numpy()] = np.array(
        [s.reason for s in body.samples if isinstance(s, Unreadable)], dtype=object
    )
    reasons[~kinds.isin([dict, Unreadable]).to_numpy()] = "sample is not a JSON object"
    reasons[unstorable(texts) & (reasons == "").to_numpy()] = UNSTORABLE_REASON
    return reasons


def _land(
    conn: Connection,
    user_id: str,
    device_id: str,
    device_class: str,
    device_name: str,
    body: SyncBody,
    limits: SampleLimits,
) -> dict[str, Any]:
    """Land the samples that pass every check; quarantine the others as sent (their text), with their reasons.
    Returns the response."""
    batch_id = create_batch(conn, user_id, "device_sync", device_id)
    texts = pa.array(body.texts, type=pa.large_string())
    before = _whole_sample_reasons(body, texts)
    incoming = _objects(body, user_id, (before != "").to_numpy())
    field_reasons, metadata = check_fields(incoming, limits)
    before[field_reasons.index] = field_reasons
    incoming = incoming[(field_reasons == "").to_numpy()]
    if metadata is not None:
        incoming["metadata"] = metadata.reindex(incoming.index)
    incoming["user_id"] = user_id  # a device syncs for its owner only, whatever the body says
    incoming["device"] = device_id
    names = incoming["source_name"] if "source_name" in incoming else pd.Series(None, index=incoming.index)
    incoming["source_name"] = names.where(names.notna() & (names.astype(str) != ""), device_name)
    # a sample's own deviceClass or seed word (a phone app syncing what the watch measured) outranks the device's
    split = split_for_landing(incoming, "ISO8601", unnamed_class=DeviceClass(device_class))
    reasons = pd.concat([before[before != ""], split.rejected["reason"]]).sort_index()
    positions = reasons.index.to_numpy()
    rejected = pd.DataFrame(
        {
            "user_id": user_id,
            "reason": reasons.to_numpy(),
            "payload": text_payloads(texts.take(pa.array(positions, pa.int64()))).to_numpy(zero_copy_only=False),
        },
        index=reasons.index,
    )
    details = [
        {"index": int(index), "sample": echo(body.texts[int(index)]), "error": str(reason)}
        for index, reason in reasons.iloc[:MAX_ERROR_DETAILS].items()
    ]
    counts = land_chunk(conn, batch_id, LandingSplit(split.accepted, rejected))
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
