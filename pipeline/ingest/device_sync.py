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
from pipeline.ingest.store import BatchCounts, create_batch, finish_batch, insert_staged, prepare_chunk, stage_chunk
from pipeline.ingest.sync_body import SAMPLES_FIELD, SyncBody, Unreadable, decode_samples, parse_sync_body
from pipeline.privacy.keyring import keyring_for

MAX_SAMPLES_PER_REQUEST = 10_000
MAX_ERROR_DETAILS = 100
ECHO_CHARS = 200  # of a rejected sample's text in its error detail
# How much of a body's text is decoded, checked and staged at a time (decoded: ~3x as much memory). Each chunk
# costs a fixed ~50 ms of pandas work as well: 4 MB peaked at 234 MB for a 10 MB body, 2 MB at 216 MB and ~20 %
# more time.
SYNC_CHUNK_BYTES = 4_000_000


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
    return parse_sync_body(json.dumps({SAMPLES_FIELD: list(samples)}).encode(), len(samples))


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


class RequestHash:
    """The request hash, built sample by sample as the body is read (a `SampleVisitor`): the SHA-256 of
    ``{"device": ..., "samples": [...]}`` as canonical JSON (sorted keys, no spaces: key order and spacing do not
    count), fed piece by piece, so no canonical text of the whole body is ever held. When a sample has no canonical
    form (an integer Python could not decode), the hash of ``{"device": ..., "sampleTexts": [...]}``, the texts as
    sent, instead."""

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id
        self.start()

    def start(self) -> None:
        self._hash = hashlib.sha256(f'{{"device":{_CANONICAL.encode(self.device_id)},"samples":['.encode())
        self._separator = b""
        self._canonical = True

    def add(self, sample: Any) -> None:
        if not self._canonical:
            return
        try:
            piece = _CANONICAL.encode(sample)
        except (TypeError, ValueError, RecursionError):
            self._canonical = False
            return
        self._hash.update(self._separator + piece.encode())
        self._separator = b","

    def hexdigest(self, body: SyncBody) -> str:
        """The hash of ``body``, whose samples were all `add`-ed."""
        if self._canonical:
            whole = self._hash.copy()
            whole.update(b"]}")
            return whole.hexdigest()
        texts = hashlib.sha256(f'{{"device":{json.dumps(self.device_id)},"sampleTexts":['.encode())
        for first, stop in body.chunks(SYNC_CHUNK_BYTES):
            chunk = body.texts_of(first, stop)
            texts.update((b"," if first else b"") + ",".join(json.dumps(text) for text in chunk).encode())
        texts.update(b"]}")
        return texts.hexdigest()


def request_hash(device_id: str, body: SyncBody) -> str:
    """The hash of the samples as canonical JSON (`RequestHash`), decoding them again a chunk at a time."""
    hasher = RequestHash(device_id)
    for first, stop in body.chunks(SYNC_CHUNK_BYTES):
        for sample in body.decoded(first, stop):
            hasher.add(sample)
    return hasher.hexdigest(body)


def sync_samples(
    conn: Connection,
    user_id: str,
    device_id: str,
    samples: SyncBody | list[Any],
    idempotency_key: str | None,
    limits: SampleLimits | None = None,
    body_hash: str | None = None,
) -> SyncOutcome:
    """Land ``samples`` for the user's device. ``conn`` must not be in a transaction (this opens one).
    ``body_hash``: the `RequestHash` of the body for this device when it was built as the body was read.

    The response is built and serialized before the transaction commits: a response that could not be sent would
    otherwise be stored and replayed for every retry."""
    body = samples if isinstance(samples, SyncBody) else body_of(samples)
    body_hash = body_hash or request_hash(device_id, body)
    key = idempotency_key or f"content:{body_hash}"
    with conn.transaction():
        device = conn.execute(
            "SELECT device_class FROM app.devices WHERE user_id = %s AND device_id = %s", (user_id, device_id)
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
        response = _land(conn, user_id, device_id, str(device[0]), body, limits or SampleLimits())
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


def _objects(samples: list[Any], index: pd.RangeIndex, user_id: str, rejectable: np.ndarray) -> pd.DataFrame:
    """The samples that are objects (not already rejected) as incoming rows, indexed by their position. Only known
    fields become columns: other keys stay in the sample's text."""
    chosen = [i for i, sample in enumerate(samples) if isinstance(sample, dict) and not rejectable[i]]
    objects = [samples[i] for i in chosen]
    keys = set().union(*objects) if objects else set()
    fields = [name for name in FIELD_NAMES if name in keys and name not in USER_FIELDS]
    return to_incoming(pd.DataFrame(objects, columns=fields, index=index[chosen]), user_id)


def _whole_sample_reasons(samples: list[Any], index: pd.RangeIndex, texts: pa.Array) -> pd.Series:
    """Per sample (by position), why it cannot become a row at all: undecodable, not an object, or holding what
    PostgreSQL cannot store; '' for the others."""
    kinds = pd.Series(samples, dtype=object).map(type)
    reasons = pd.Series("", index=index, dtype=object)
    reasons[kinds.isin([Unreadable]).to_numpy()] = np.array(
        [s.reason for s in samples if isinstance(s, Unreadable)], dtype=object
    )
    reasons[~kinds.isin([dict, Unreadable]).to_numpy()] = "sample is not a JSON object"
    reasons[unstorable(texts) & (reasons == "").to_numpy()] = UNSTORABLE_REASON
    return reasons


@dataclass(frozen=True)
class _Device:
    user_id: str
    device_id: str
    device_class: str


def _checked(
    device: _Device, body: SyncBody, first: int, stop: int, limits: SampleLimits
) -> tuple[LandingSplit, pd.Series]:
    """Samples ``first`` up to ``stop`` split into rows that land and rejects (their text as sent as payload), and
    the rejects' reasons, indexed by the samples' positions in the body."""
    index = pd.RangeIndex(first, stop)
    texts_as_sent = body.texts_of(first, stop)
    samples = decode_samples(texts_as_sent)
    texts = pa.array(texts_as_sent, type=pa.large_string())
    del texts_as_sent
    before = _whole_sample_reasons(samples, index, texts)
    incoming = _objects(samples, index, device.user_id, (before != "").to_numpy())
    del samples  # the rows hold what lands; the dicts go as early as they can
    field_reasons, metadata = check_fields(incoming, limits)
    before[field_reasons.index] = field_reasons
    incoming = incoming[(field_reasons == "").to_numpy()]
    if metadata is not None:
        incoming["metadata"] = metadata.reindex(incoming.index).astype("string")
    incoming["user_id"] = device.user_id  # a device syncs for its owner only, whatever the body says
    incoming["device"] = device.device_id
    names = incoming["source_name"] if "source_name" in incoming else pd.Series(None, index=incoming.index)
    # a sample without a source name is named by its device's id: the device's own name is personal (encrypted in
    # app.devices) and source names stay plain for deduplication (docs/privacy.md)
    incoming["source_name"] = names.where(names.notna() & (names.astype(str) != ""), device.device_id)
    # a sample's own deviceClass or seed word (a phone app syncing what the watch measured) outranks the device's
    split = split_for_landing(incoming, "ISO8601", DeviceClass(device.device_class), payloads=False)
    reasons = pd.concat([before[before != ""], split.rejected["reason"]]).sort_index()
    rejected = pd.DataFrame(
        {
            "user_id": device.user_id,
            "reason": reasons.to_numpy(),
            "payload": text_payloads(texts.take(pa.array(reasons.index.to_numpy() - first, pa.int64()))).to_numpy(
                zero_copy_only=False
            ),
        },
        index=reasons.index,
    )
    return LandingSplit(split.accepted, rejected), reasons


def _land(
    conn: Connection,
    user_id: str,
    device_id: str,
    device_class: str,
    body: SyncBody,
    limits: SampleLimits,
) -> dict[str, Any]:
    """Land the samples that pass every check; quarantine the others as sent (their text), with their reasons.
    Returns the response. The body is checked and staged a chunk (`SYNC_CHUNK_BYTES`) at a time, then inserted at once:
    the batch stays all-or-nothing (one transaction) and a repeat anywhere in it counts as a duplicate."""
    batch_id = create_batch(conn, user_id, "device_sync", device_id)
    device = _Device(user_id, device_id, device_class)
    keys = keyring_for(conn)
    staged = BatchCounts()
    details: list[dict[str, Any]] = []
    for first, stop in body.chunks(SYNC_CHUNK_BYTES):
        split, reasons = _checked(device, body, first, stop, limits)
        prepared = prepare_chunk(split, keys)
        del split
        stage_chunk(conn, prepared)
        staged.landed += prepared.sample_count
        staged.rejected += prepared.reject_count
        wanted = MAX_ERROR_DETAILS - len(details)
        for index, reason in zip(reasons.index[:wanted].tolist(), reasons.iloc[:wanted].tolist(), strict=True):
            details.append({"index": index, "sample": echo(body.text_of(index)), "error": str(reason)})
    counts = insert_staged(conn, batch_id, staged.landed, staged.rejected)
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
