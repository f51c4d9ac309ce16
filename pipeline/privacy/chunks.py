"""Texts encrypted in bulk: one AES-GCM ciphertext per (user, chunk) holds the texts of that user's rows in a
chunk (samples' metadata, quarantined payloads), and each row keeps only where its text is: the chunk's id and its
slot. An import of 2M samples makes ~70 ciphertexts, not 2M, and sealing is a few vectorized Arrow operations and
one AES call per user per chunk.

A chunk's plaintext: ``n`` (uint32), ``n + 1`` offsets (uint32, little-endian) into the bytes that follow, then the
texts' UTF-8 bytes back to back: slot ``i`` is ``bytes[offsets[i]:offsets[i + 1]]``. The associated data binds the
ciphertext to its chunk id and subject. Chunks live in ``raw.sealed_chunks``, keyed by (user_id, chunk_id) with
user_id the subject: `UNATTRIBUTED` for the payloads of quarantined lines that name no user (the column takes no
NULL: it is what a Citus cluster distributes the table by, docs/scaling.md).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pipeline.infra.database import Connection
from pipeline.privacy.keyring import NONCE_BYTES, UNATTRIBUTED, Keyring
from pipeline.privacy.keystore import as_bytes

_VERSION = b"\x01"
_TAG_BYTES = 16  # AES-GCM's authentication tag
# Rows per sealed chunk at most: a chunk is encrypted and stored whole, so its size is a peak of the landing's memory
# (and of the connection's send buffer); 10,000 rejected lines are a few MB.
MAX_SEALED_ROWS = 10_000


class SealedChunkError(ValueError):
    """A sealed chunk does not open with its subject's key: altered, or not the chunk it claims to be."""


@dataclass(frozen=True)
class SealedChunk:
    chunk_id: uuid.UUID
    user_id: str | None  # None or `UNATTRIBUTED` (as stored): sealed under `UNATTRIBUTED`
    sealed: bytes | bytearray


@dataclass(frozen=True)
class SealedColumn:
    """Where each row's text went: chunk id (text, NULL where the row had none) and slot (-1 where none)."""

    chunk_ids: pa.Array
    slots: np.ndarray
    chunks: list[SealedChunk]


def _aad(chunk_id: uuid.UUID, subject: str) -> bytes:
    return b"healthpipe chunk\x00" + chunk_id.bytes + subject.encode()


def subject_of(user_id: str | None) -> str:
    """Whose key seals a row's text: its user's, or `UNATTRIBUTED`'s for a row naming no user. Also what
    ``raw.sealed_chunks.user_id`` and ``raw.quarantine.user_id`` hold for it."""
    return UNATTRIBUTED if user_id is None else user_id


def seal_texts(data_key: bytes, user_id: str | None, texts: pa.Array) -> SealedChunk:
    """One sealed chunk holding ``texts`` (no NULLs) in order. Encrypted straight from the Arrow buffer into the one
    buffer the chunk is stored from: a chunk of 100,000 rejected lines is tens of MB, and each copy of it would be
    another such peak in the import's memory."""
    texts = _array(texts)
    if texts.null_count:
        texts = pc.fill_null(texts, "")
    offsets = np.frombuffer(texts.buffers()[1], np.int32, count=len(texts) + 1, offset=4 * texts.offset)
    start, stop = int(offsets[0]), int(offsets[-1])
    data = texts.buffers()[2]
    body = memoryview(b"") if data is None else memoryview(data).cast("B")[start:stop]  # bytes, not signed chars
    header = np.uint32(len(texts)).tobytes() + (offsets - start).astype("<u4").tobytes()
    chunk_id = uuid.uuid4()
    nonce = secrets.token_bytes(NONCE_BYTES)
    encryptor = Cipher(algorithms.AES(data_key), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(_aad(chunk_id, subject_of(user_id)))
    # the layout AESGCM.encrypt gives (ciphertext, then the tag), after the version and the nonce
    at = len(_VERSION) + NONCE_BYTES
    sealed = bytearray(at + len(header) + len(body) + _TAG_BYTES)
    sealed[:at] = _VERSION + nonce
    out = memoryview(sealed)
    for part in (header, body):
        if len(part):
            at += encryptor.update_into(part, out[at:])  # room to spare: the tag's 16 bytes follow
    encryptor.finalize()
    out[at:] = encryptor.tag
    return SealedChunk(chunk_id, user_id, sealed)


def open_texts(data_key: bytes, chunk: SealedChunk) -> pa.Array:
    """The texts of a sealed chunk, by slot."""
    body = chunk.sealed
    if body[:1] != _VERSION:
        raise SealedChunkError(f"chunk {chunk.chunk_id} is not a sealed chunk")
    try:
        plain = AESGCM(data_key).decrypt(
            body[1 : 1 + NONCE_BYTES], body[1 + NONCE_BYTES :], _aad(chunk.chunk_id, subject_of(chunk.user_id))
        )
    except InvalidTag:
        raise SealedChunkError(f"chunk {chunk.chunk_id} does not open with its user's key") from None
    count = int(np.frombuffer(plain, "<u4", count=1)[0])
    header = 4 * (count + 2)
    offsets = np.frombuffer(plain, "<u4", count=count + 1, offset=4).astype(np.int32)
    return pa.StringArray.from_buffers(count, pa.py_buffer(offsets.tobytes()), pa.py_buffer(plain[header:]))


def _array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous UTF-8 string array (int32 offsets)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values.cast(pa.string()) if values.type != pa.string() else values


def seal_column(keys: Keyring, users: pa.Array | pa.ChunkedArray, texts: pa.Array | pa.ChunkedArray) -> SealedColumn:
    """Seal ``texts`` (NULLs allowed: they stay NULL), a chunk per distinct user of ``users`` and per
    `MAX_SEALED_ROWS` of their rows."""
    users, texts = _array(users), _array(texts)
    rows = len(texts)
    slots = np.full(rows, -1, np.int64)
    chunk_ids = np.full(rows, None, object)
    chunks: list[SealedChunk] = []
    present = np.asarray(texts.is_valid().to_numpy(zero_copy_only=False), bool)
    if present.any():
        for user in pc.unique(users.filter(pa.array(present))).to_pylist():  # few: one or a handful per chunk
            match = users.is_null() if user is None else pc.fill_null(pc.equal(users, user), False)
            mine = present & np.asarray(match.to_numpy(zero_copy_only=False), bool)
            at = np.flatnonzero(mine)
            key = keys.data_key(subject_of(user))
            for first in range(0, len(at), MAX_SEALED_ROWS):
                piece = at[first : first + MAX_SEALED_ROWS]
                contiguous = piece[-1] - piece[0] + 1 == len(piece)
                # a run of rows is a slice of the column (no copy); scattered rows are gathered
                mine_only = texts.slice(int(piece[0]), len(piece)) if contiguous else texts.take(pa.array(piece))
                chunk = seal_texts(key, user, mine_only)
                chunks.append(chunk)
                slots[piece] = np.arange(len(piece))
                chunk_ids[piece] = str(chunk.chunk_id)
    return SealedColumn(pa.array(chunk_ids, pa.string()), slots, chunks)


def store_chunks(conn: Connection, chunks: Sequence[SealedChunk]) -> None:
    if chunks:
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO raw.sealed_chunks (chunk_id, user_id, sealed) VALUES (%s, %s, %s)",
                [(chunk.chunk_id, subject_of(chunk.user_id), chunk.sealed) for chunk in chunks],
            )


def open_refs(
    conn: Connection,
    keys: Keyring,
    users: Sequence[str | None],
    chunk_ids: Sequence[uuid.UUID | None],
    slots: Sequence[int | None],
) -> list[str | None]:
    """The texts at (chunk, slot) references of rows of ``users`` (a row's chunk is sealed under its own user, None
    or `UNATTRIBUTED` for none), in order (None where the reference is None). Each chunk is looked up by its key
    (user, chunk id) and read once; `KeyDestroyedError` when a chunk's key was destroyed."""
    wanted = sorted(
        {(subject_of(user), chunk_id) for user, chunk_id in zip(users, chunk_ids, strict=True) if chunk_id is not None}
    )
    opened: dict[uuid.UUID, list[str]] = {}
    if wanted:
        rows = conn.execute(
            """SELECT c.chunk_id, c.user_id, c.sealed
               FROM unnest(%s::text[], %s::uuid[]) AS w(user_id, chunk_id)
               JOIN raw.sealed_chunks c USING (user_id, chunk_id)""",
            ([user for user, _ in wanted], [chunk_id for _, chunk_id in wanted]),
        ).fetchall()
        for chunk_id, user_id, sealed in rows:
            chunk = SealedChunk(chunk_id, user_id, as_bytes(sealed))  # type: ignore[arg-type]
            opened[chunk.chunk_id] = open_texts(keys.existing_key(subject_of(chunk.user_id)), chunk).to_pylist()
    return [
        None if chunk_id is None or slot is None else opened[chunk_id][slot]
        for chunk_id, slot in zip(chunk_ids, slots, strict=True)
    ]
