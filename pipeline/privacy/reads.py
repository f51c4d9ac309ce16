"""Reading what the landing stored encrypted: samples' metadata and quarantined payloads, decrypted in bulk (each
sealed chunk opened once). For whoever shows or exports them; the pipeline itself never needs them."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from pipeline.infra.database import Connection
from pipeline.privacy.chunks import SealedChunk, open_refs, open_texts, subject_of
from pipeline.privacy.keyring import UNATTRIBUTED, keyring_for
from pipeline.privacy.keystore import as_bytes


@dataclass(frozen=True)
class Quarantined:
    quarantine_id: int
    batch_id: int
    user_id: str | None  # None: the line named no user (stored as `UNATTRIBUTED`)
    reason: str
    payload: str  # JSON text, as received
    quarantined_at: dt.datetime


def quarantined(conn: Connection, *, batch_id: int | None = None, user_id: str | None = None) -> list[Quarantined]:
    """Quarantined rows of a batch and/or a user (both None: all), in order, payloads decrypted."""
    rows = conn.execute(
        """SELECT quarantine_id, batch_id, nullif(user_id, %(unattributed)s), reason, payload_chunk, payload_slot,
                  quarantined_at
           FROM raw.quarantine
           WHERE (%(batch)s::bigint IS NULL OR batch_id = %(batch)s) AND (%(user)s::text IS NULL OR user_id = %(user)s)
           ORDER BY quarantine_id""",
        {"batch": batch_id, "user": user_id, "unattributed": UNATTRIBUTED},
    ).fetchall()
    payloads = open_refs(
        conn,
        keyring_for(conn),
        [r[2] for r in rows],  # type: ignore[misc]
        [r[4] for r in rows],  # type: ignore[misc]
        [r[5] for r in rows],  # type: ignore[misc]
    )
    return [
        Quarantined(int(r[0]), int(r[1]), r[2], str(r[3]), str(p), r[6])  # type: ignore[call-overload, arg-type]
        for r, p in zip(rows, payloads, strict=True)
    ]


def sample_metadata(conn: Connection, user_id: str, *, batch_id: int | None = None) -> dict[uuid.UUID, str]:
    """The user's samples that carry metadata (of one batch, if given): identity -> metadata JSON text."""
    rows = conn.execute(
        """SELECT identity, metadata_chunk, metadata_slot FROM raw.samples
           WHERE user_id = %(user)s AND metadata_chunk IS NOT NULL
             AND (%(batch)s::bigint IS NULL OR batch_id = %(batch)s)""",
        {"user": user_id, "batch": batch_id},
    ).fetchall()
    texts = open_refs(
        conn,
        keyring_for(conn),
        [user_id] * len(rows),
        [r[1] for r in rows],  # type: ignore[misc]
        [r[2] for r in rows],  # type: ignore[misc]
    )
    return {r[0]: str(t) for r, t in zip(rows, texts, strict=True)}  # type: ignore[misc]


def metadata_chunks(conn: Connection, user_id: str) -> Iterator[tuple[uuid.UUID, list[str | None]]]:
    """Every sealed chunk of the user's samples' metadata, opened: (chunk id, texts by slot), a chunk at a time (an
    export's memory holds one chunk, not the user's whole history)."""
    keys = keyring_for(conn)
    chunk_ids: list[uuid.UUID] = [
        row[0]  # type: ignore[misc]
        for row in conn.execute(
            "SELECT DISTINCT metadata_chunk FROM raw.samples WHERE user_id = %s AND metadata_chunk IS NOT NULL",
            (user_id,),
        ).fetchall()
    ]
    for chunk_id in chunk_ids:
        row = conn.execute(
            "SELECT user_id, sealed FROM raw.sealed_chunks WHERE user_id = %s AND chunk_id = %s", (user_id, chunk_id)
        ).fetchone()
        if row is None:
            continue
        chunk = SealedChunk(chunk_id, row[0], as_bytes(row[1]))  # type: ignore[arg-type]
        yield chunk_id, open_texts(keys.existing_key(subject_of(chunk.user_id)), chunk).to_pylist()
