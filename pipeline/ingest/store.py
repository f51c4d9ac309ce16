"""Writing landed samples, rejects and batch accounting to PostgreSQL: COPY in, set-based SQL, one transaction
per chunk (a crash loses at most the chunk in flight, and re-running lands only what is missing).

A chunk is handled in two steps so that an importer can overlap them: `prepare_chunk` serialises it for COPY (CPU,
Python), `write_chunk` sends it and runs the set-based insert (the server's work; psycopg releases the GIL while
it waits, so the next chunk can be parsed meanwhile).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import psycopg
import psycopg.errors
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.data_version import advance_sql
from pipeline.infra.database import Connection
from pipeline.ingest.landing import LANDED_COLUMNS, LandingSplit
from pipeline.ingest.months import ensure_sample_months, months_of
from pipeline.privacy.chunks import SealedChunk, open_refs, seal_column, store_chunks, subject_of
from pipeline.privacy.keyring import UNATTRIBUTED, Keyring, keyring_for

# Accepted rows are staged typed, through binary COPY (`copy_binary`): no text to parse on the server and no casts.
# The identity hashes text, exactly as it always has: the value as written by Arrow (its shortest round-trip
# form, staged beside the typed value) and the instants as integer microseconds since the epoch. Changing either
# text would change every identity, and a re-imported export would land twice.
_STAGE_FIXED: tuple[tuple[str, str], ...] = (
    ("value", "double precision"),
    ("start_us", "bigint"),
    ("end_us", "bigint"),
    ("start_utc", "timestamptz"),
    ("end_utc", "timestamptz"),
    ("metadata_slot", "bigint"),  # -1: no metadata
)
_STAGE_TEXT = (
    "user_id",
    "metric",
    "value_text",
    "unit",
    "stage",
    "timezone",
    "source_name",
    "device_class",
    "source_app",
    "device",
    "external_id",
    "metadata_chunk",  # raw.sealed_chunks holding the metadata (pipeline/privacy/chunks.py)
)
_STAGE_COLUMNS = tuple(name for name, _ in _STAGE_FIXED) + _STAGE_TEXT
_STAGE_TABLE = f"""CREATE TEMP TABLE IF NOT EXISTS landing_stage (
    {", ".join(f"{name} {sql_type}" for name, sql_type in _STAGE_FIXED)},
    {", ".join(f"{name} text" for name in _STAGE_TEXT)}) ON COMMIT DELETE ROWS"""
_SAMPLE_TEXT = """user_id || '|' || metric || '|' || source_name || '|' || coalesce(device, '') || '|'
    || start_us || '|' || end_us || '|' || value_text || '|' || unit || '|' || coalesce(stage, '') || '|'
    || coalesce(external_id, '')"""
# The source app is part of what makes a sample the same sample: two apps writing the same reading under one source
# name are two raw rows (the pipeline's discrete matching keeps one and records the match). A row without an app
# keeps the identity every row had before apps counted; a row with one hashes that identity's hex digits with its
# app, so migration 0006 derives it from stored rows alone (a re-import after it lands nothing).
IDENTITY_SQL = f"""(CASE WHEN coalesce(source_app, '') = '' THEN md5({_SAMPLE_TEXT})
    ELSE md5(md5({_SAMPLE_TEXT}) || '|' || source_app) END)::uuid"""
# The metadata is not stored as text: each row points at its user's sealed chunk and its slot there.
_PLAIN_COLUMNS = tuple(name for name in LANDED_COLUMNS if name != "metadata")
_ROW_COLUMNS = (*_PLAIN_COLUMNS, "metadata_chunk", "metadata_slot")
_STAGED_ROWS = f"""SELECT {IDENTITY_SQL} AS identity, {", ".join(_PLAIN_COLUMNS)},
    metadata_chunk::uuid AS metadata_chunk, nullif(metadata_slot, -1)::integer AS metadata_slot FROM landing_stage"""
# Samples starting before the retention cutoff (`healthpipe db retention`) do not land: their months are detached
# (pipeline/ingest/retention.py), and a new table for such a month would hold a fraction of it. They are quarantined.
_RETAINED_FROM = "(SELECT coalesce(max(before), '-infinity'::date) FROM raw.sample_retention)"
_INSERT_STAGED = f"""INSERT INTO raw.samples (identity, batch_id, {", ".join(_ROW_COLUMNS)})
    SELECT identity, %s, {", ".join(_ROW_COLUMNS)} FROM ({_STAGED_ROWS}) staged
    WHERE user_id IN (SELECT user_id FROM app.users) AND start_utc >= {_RETAINED_FROM}"""
# Expecting new rows, a plain INSERT: the unique index refuses a repeat (already landed, twice in the chunk, or
# landed meanwhile by a concurrent import), and the chunk is then inserted again with ON CONFLICT DO NOTHING. The
# plain insert skips ON CONFLICT's per-row probe and speculative insertion (about 1.5 us of server time per row).
# A refused insert leaves the rows it wrote before the repeat as dead tuples for vacuum: at most one chunk each time
# an import meets repeats after a chunk without any (the importer then stays on ON CONFLICT while repeats last).
_INSERT_NEW = _INSERT_STAGED + " ON CONFLICT (user_id, start_utc, identity) DO NOTHING"
# Rows of users that do not exist (a file naming someone never added) and rows before the retention cutoff are
# quarantined: their payloads are built here and sealed in Python like every other payload (the metadata stays in its
# sealed chunk, named by the payload).
_UNLANDABLE_ROWS = f"""SELECT user_id,
    CASE WHEN user_id NOT IN (SELECT user_id FROM app.users) THEN format('unknown user %L', user_id)
         ELSE format('starts before %s, the raw retention cutoff (healthpipe db retention)',
                     to_char({_RETAINED_FROM}, 'YYYY-MM')) END,
    (to_jsonb(staged) - 'identity' - 'metadata_chunk' - 'metadata_slot')::text, metadata_chunk, metadata_slot
    FROM ({_STAGED_ROWS}) staged
    WHERE user_id NOT IN (SELECT user_id FROM app.users) OR start_utc < {_RETAINED_FROM}"""
# A chunk of which nothing landed (a re-import) leaves no metadata behind
_UNUSED_METADATA_CHUNKS = """DELETE FROM raw.sealed_chunks
    WHERE (user_id, chunk_id) IN (SELECT DISTINCT user_id, metadata_chunk::uuid FROM landing_stage
                                  WHERE metadata_chunk IS NOT NULL)"""
_REJECT_COLUMNS = ("user_id", "reason", "payload")
_REJECT_STAGE_COLUMNS = ("user_id", "reason", "payload_chunk", "payload_slot")
_REJECT_STAGE_TABLE = """CREATE TEMP TABLE IF NOT EXISTS reject_stage (user_id text, reason text, payload_chunk uuid,
    payload_slot integer) ON COMMIT DELETE ROWS"""


@dataclass
class BatchCounts:
    read: int = 0
    landed: int = 0
    duplicates: int = 0
    rejected: int = 0
    skipped: int = 0
    skipped_types: dict[str, int] = field(default_factory=dict)
    users: set[str] = field(default_factory=set)  # whose samples chunks that landed any held

    def add(self, other: BatchCounts) -> None:
        self.read += other.read
        self.landed += other.landed
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.skipped += other.skipped
        for key, count in other.skipped_types.items():
            self.skipped_types[key] = self.skipped_types.get(key, 0) + count
        self.users |= other.users

    @property
    def balanced(self) -> bool:
        """Every record read is accounted for: read = landed + duplicates + rejected + skipped."""
        return self.read == self.landed + self.duplicates + self.rejected + self.skipped


def frame_to_csv(frame: pd.DataFrame, instants_as_micros: bool = True) -> str:
    """CSV for COPY, built with Arrow's vectorized string kernels (several times faster than ``to_csv``).

    NULL is an unquoted empty field; every text value is quoted, so an empty string stays an empty string.
    Datetime columns become integer microseconds since the epoch (exact, cheap to write and to parse); floats are
    written in their shortest round-trip form, so ``value::text`` in the identity hash sees the same number.
    """
    if frame.empty:
        return ""
    fields = []
    for column in frame.columns:
        series = frame[column]
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            naive = series.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]")
            if instants_as_micros:
                text = pc.cast(pa.array(naive.astype("int64").to_numpy(), mask=series.isna().to_numpy()), pa.string())
            else:  # ISO 8601 in UTC, for timestamptz columns
                iso = pc.cast(pa.array(naive.to_numpy(), mask=series.isna().to_numpy()), pa.string())
                text = pc.binary_join_element_wise(iso, "+00", "")
        elif pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
            text = pc.cast(
                pa.array(series.to_numpy(dtype=float if series.dtype.kind == "f" else None), from_pandas=True),
                pa.string(),
            )
        else:
            values = pa.array(series.astype("string").array, type=pa.string(), from_pandas=True)
            text = pc.binary_join_element_wise('"', pc.replace_substring(values, '"', '""'), '"', "")
        fields.append(pc.fill_null(text, ""))
    lines = pc.binary_join_element_wise(*fields, ",")
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    whole = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, len(lines)], pa.int32()), lines), "\n")
    return str(whole[0].as_py()) + "\n"


_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
_COPY_TRAILER = b"\xff\xff"
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in microseconds since 1970: binary timestamptz counts from it


def _length_prefixed(values: pa.Array | pa.ChunkedArray, lead: bytes = b"") -> list[pa.Array]:
    """A text field of every row: its big-endian int32 length (-1 for NULL), then its bytes (after ``lead``)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    data = values.cast(pa.binary())
    if lead:
        data = pc.binary_join_element_wise(lead, data, b"")
    lengths = pc.fill_null(pc.binary_length(data), -1).to_numpy().astype(">i4")
    prefix = pa.FixedSizeBinaryArray.from_buffers(pa.binary(4), len(data), [None, pa.py_buffer(lengths)])
    return [prefix.cast(pa.binary()), pc.fill_null(data, b"")]


def copy_binary(fixed: list[np.ndarray], texts: list[pa.Array | pa.ChunkedArray], jsonb: list[pa.Array]) -> pa.Buffer:
    """The rows of PostgreSQL's binary COPY format (without header and trailer), built with vectorized kernels.

    Columns in this order: ``fixed`` (8-byte values, no NULLs: float64, or int64 for bigint and timestamptz already
    counted from 2000-01-01), ``texts`` (UTF-8, NULLs allowed), ``jsonb`` (JSON text, NULLs allowed). Every row is
    one element of an Arrow binary array joined field by field, so the array's data buffer is the COPY stream."""
    rows = len(fixed[0])
    head = np.empty((rows, 2 + 12 * len(fixed)), np.uint8)
    head[:, :2] = np.frombuffer((len(fixed) + len(texts) + len(jsonb)).to_bytes(2, "big"), np.uint8)
    for i, column in enumerate(fixed):
        at = 2 + 12 * i
        head[:, at : at + 4] = np.frombuffer((8).to_bytes(4, "big"), np.uint8)
        head[:, at + 4 : at + 12] = column.astype(column.dtype.newbyteorder(">")).view(np.uint8).reshape(rows, 8)
    block = pa.FixedSizeBinaryArray.from_buffers(pa.binary(head.shape[1]), rows, [None, pa.py_buffer(head)])
    fields = [block.cast(pa.binary())]
    for values in texts:
        fields += _length_prefixed(values)
    for values in jsonb:
        fields += _length_prefixed(values, lead=b"\x01")  # jsonb's binary form: version 1, then the text
    joined = pc.binary_join_element_wise(*fields, b"")
    offsets = np.frombuffer(joined.buffers()[1], np.int32, count=len(joined) + 1, offset=4 * joined.offset)
    return joined.buffers()[2][offsets[0] : offsets[-1]]


def _utc_micros(series: pd.Series) -> np.ndarray:
    naive = series.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]")
    return np.asarray(naive.to_numpy().view(np.int64))


def _text_array(series: pd.Series) -> pa.Array:
    return pa.array(series.astype("string").array, type=pa.string(), from_pandas=True)


def samples_copy(accepted: pd.DataFrame, keys: Keyring) -> tuple[pa.Buffer, list[SealedChunk]]:
    """Accepted rows (LANDED_COLUMNS) as binary COPY rows of ``landing_stage``, and the sealed chunks holding their
    metadata (one per user)."""
    value = accepted["value"].to_numpy(dtype=float)
    start, end = _utc_micros(accepted["start_utc"]), _utc_micros(accepted["end_utc"])
    texts = {name: _text_array(accepted[name]) for name in _PLAIN_COLUMNS if name in _STAGE_TEXT}
    # the value's text for the identity: Arrow's shortest round-trip form, as every landed row's identity used
    texts["value_text"] = pc.cast(pa.array(value, from_pandas=True), pa.string())
    texts["unit"] = pc.fill_null(texts["unit"], "")
    metadata = seal_column(keys, texts["user_id"], _text_array(accepted["metadata"]))
    texts["metadata_chunk"] = metadata.chunk_ids
    rows = copy_binary(
        [value, start, end, start - _PG_EPOCH_US, end - _PG_EPOCH_US, metadata.slots],
        [texts[name] for name in _STAGE_TEXT],
        [],
    )
    return rows, metadata.chunks


def _sealed_rejects(rejects: pd.DataFrame, keys: Keyring) -> tuple[pd.DataFrame, list[SealedChunk]]:
    """Rejects (user_id, reason, payload) with their payloads sealed: (user_id, reason, payload_chunk, slot)."""
    users = _text_array(rejects["user_id"])
    payloads = seal_column(keys, users, _text_array(rejects["payload"]))
    frame = pd.DataFrame(
        {
            "user_id": rejects["user_id"].to_numpy(),
            "reason": rejects["reason"].to_numpy(),
            "payload_chunk": payloads.chunk_ids.to_pandas(),
            "payload_slot": payloads.slots,
        }
    )
    return frame, payloads.chunks


def _copy(conn: Connection, table: str, columns: tuple[str, ...], payload: str, options: str = "FORMAT csv") -> None:
    with conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH ({options})".encode()) as copy:
        copy.write(payload)


def _copy_binary(conn: Connection, table: str, columns: tuple[str, ...], rows: pa.Buffer) -> None:
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT binary)"
    with conn.cursor().copy(statement.encode()) as copy:
        copy.write(_COPY_HEADER)
        copy.write(memoryview(rows))
        copy.write(_COPY_TRAILER)


@dataclass(frozen=True)
class PreparedChunk:
    """A chunk serialised for COPY."""

    samples: pa.Buffer | None  # binary COPY rows of landing_stage
    sample_count: int
    rejects_csv: str
    reject_count: int
    users: frozenset[str] = frozenset()  # of the samples
    sealed: tuple[SealedChunk, ...] = ()  # the metadata and payloads of the chunk, a ciphertext per user and kind
    months: tuple[dt.date, ...] = ()  # UTC months of the samples' starts: raw.samples needs their tables


def prepare_chunk(split: LandingSplit, keys: Keyring) -> PreparedChunk:
    """Serialise a chunk for COPY, its metadata and rejects' payloads sealed with their users' keys (``keys``:
    `pipeline.privacy.keyring_for` of the warehouse)."""
    accepted = split.accepted[list(LANDED_COLUMNS)]
    rejects = split.rejected[list(_REJECT_COLUMNS)]
    samples, sealed = samples_copy(accepted, keys) if len(accepted) else (None, [])
    rejects_csv = ""
    if len(rejects):
        sealed_rejects, payload_chunks = _sealed_rejects(rejects, keys)
        rejects_csv = frame_to_csv(sealed_rejects)
        sealed += payload_chunks
    return PreparedChunk(
        samples,
        len(accepted),
        rejects_csv,
        len(rejects),
        frozenset(str(user) for user in accepted["user_id"].unique()),  # a few distinct values, found vectorized
        tuple(sealed),
        months_of(accepted["start_utc"]),
    )


def stage_chunk(conn: Connection, chunk: PreparedChunk) -> None:
    """COPY a prepared chunk into the session's stage tables (emptied when the transaction ends). Inside one
    transaction, chunks staged one after another are inserted together by `insert_staged`: a caller that lands a
    batch all-or-nothing stages it a chunk at a time and holds no more than one chunk in memory. The month tables
    of raw.samples the chunk needs are made first (`ensure_sample_months`)."""
    ensure_sample_months(conn, chunk.months)
    _stage(conn, chunk)


def _stage(conn: Connection, chunk: PreparedChunk) -> None:
    store_chunks(conn, chunk.sealed)
    if chunk.samples is not None:
        conn.execute(_STAGE_TABLE)
        _copy_binary(conn, "landing_stage", _STAGE_COLUMNS, chunk.samples)
    if chunk.reject_count:
        conn.execute(_REJECT_STAGE_TABLE)
        _copy(conn, "reject_stage", _REJECT_STAGE_COLUMNS, chunk.rejects_csv)


def insert_staged(
    conn: Connection,
    batch_id: int,
    sample_count: int,
    reject_count: int,
    expect_new: bool = False,
    users: frozenset[str] = frozenset(),
) -> BatchCounts:
    """Insert what the transaction staged (``sample_count`` samples, ``reject_count`` rejects): staged rows of
    known users whose identity is new are inserted; repeats (already landed, or twice in the stage) count as
    duplicates; rows of unknown users or before the retention cutoff are quarantined; the rejects go to quarantine.
    ``expect_new``: see `write_chunk`. ``users``: whose samples were staged, if known (the counts name them when any
    landed; else `finish_batch` finds the batch's users itself)."""
    landed = unlandable = 0
    if sample_count:
        landed = -1
        if expect_new:
            try:
                with conn.transaction():  # a savepoint: a refused plain insert leaves the stage as it was
                    landed = conn.execute(_INSERT_STAGED.encode(), (batch_id,)).rowcount
            except psycopg.errors.UniqueViolation:
                landed = -1
        if landed < 0:
            landed = conn.execute(_INSERT_NEW.encode(), (batch_id,)).rowcount
        if landed < sample_count:  # every row landed: no row can be of an unknown user or before the cutoff
            unlandable = _quarantine_unlandable(conn, batch_id)
        if landed == 0 and unlandable == 0:
            conn.execute(_UNUSED_METADATA_CHUNKS)
    if reject_count:
        conn.execute(
            """INSERT INTO raw.quarantine (batch_id, user_id, reason, payload_chunk, payload_slot)
               SELECT %s, coalesce(user_id, %s), reason, payload_chunk, payload_slot FROM reject_stage""",
            (batch_id, UNATTRIBUTED),  # a line naming no user: its payload's key, the distribution value
        )
    return BatchCounts(
        read=sample_count + reject_count,
        landed=landed,
        duplicates=sample_count - landed - unlandable,
        rejected=reject_count + unlandable,
        users=set(users) if landed > 0 else set(),
    )


def _quarantine_unlandable(conn: Connection, batch_id: int) -> int:
    """Quarantine the staged rows of users that do not exist or before the retention cutoff, their payloads sealed;
    how many."""
    rows = conn.execute(_UNLANDABLE_ROWS.encode()).fetchall()
    if not rows:
        return 0
    keys = keyring_for(conn)
    # the payload carries the row's metadata itself (a few rows: a file naming someone never added), and the
    # metadata's chunk, which no landed row refers to, goes
    chunk_ids: list[uuid.UUID | None] = [row[3] for row in rows]  # type: ignore[misc]
    slots: list[int | None] = [row[4] for row in rows]  # type: ignore[misc]
    users: list[str] = [row[0] for row in rows]  # type: ignore[misc]
    metadata = open_refs(conn, keys, users, chunk_ids, slots)
    payloads = [
        json.dumps({**json.loads(str(row[2])), "metadata": None if text is None else json.loads(text)})
        for row, text in zip(rows, metadata, strict=True)
    ]
    unused = sorted({(user, chunk_id) for user, chunk_id in zip(users, chunk_ids, strict=True) if chunk_id})
    conn.execute(
        """DELETE FROM raw.sealed_chunks
           WHERE (user_id, chunk_id) IN (SELECT * FROM unnest(%s::text[], %s::uuid[]))""",
        ([user for user, _ in unused], [chunk_id for _, chunk_id in unused]),
    )
    rejects = pd.DataFrame({"user_id": users, "reason": [row[1] for row in rows]}, dtype=object)
    rejects["payload"] = payloads
    frame, sealed = _sealed_rejects(rejects, keys)
    store_chunks(conn, sealed)
    with conn.cursor().copy(
        "COPY raw.quarantine (batch_id, user_id, reason, payload_chunk, payload_slot) FROM STDIN"
    ) as copy:
        for user_id, reason, chunk_id, slot in frame.itertuples(index=False):
            copy.write_row((batch_id, subject_of(user_id), reason, chunk_id, slot))
    return len(rows)


def write_chunk(conn: Connection, batch_id: int, chunk: PreparedChunk, expect_new: bool = False) -> BatchCounts:
    """Land one prepared chunk in one transaction (`stage_chunk`, then `insert_staged`).

    ``expect_new``: try a plain INSERT first (cheaper when nothing is a repeat, as in a first import); a repeat
    makes it fail as a whole, and the chunk is inserted again with ON CONFLICT DO NOTHING. Missing month tables
    are made before the chunk's transaction (in their own, on an autocommit connection), so it holds no lock of theirs
    while it inserts."""
    ensure_sample_months(conn, chunk.months)
    with conn.transaction():
        _stage(conn, chunk)
        return insert_staged(conn, batch_id, chunk.sample_count, chunk.reject_count, expect_new, chunk.users)


def land_chunk(conn: Connection, batch_id: int, split: LandingSplit) -> BatchCounts:
    """Prepare and write one chunk (see `write_chunk`)."""
    return write_chunk(conn, batch_id, prepare_chunk(split, keyring_for(conn)))


def create_batch(conn: Connection, user_id: str | None, source: str, source_ref: str | None) -> int:
    row = conn.execute(
        "INSERT INTO app.ingest_batches (user_id, source, source_ref) VALUES (%s, %s, %s) RETURNING batch_id",
        (user_id, source, source_ref),
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


# Advisory lock keys of running file imports: this prefix in the high half, the batch id in the low half (the
# migration lock of `pipeline.infra.migrations` uses another key). Imports are the sources in `HELD_SOURCES`.
_BATCH_LOCKS = 0x48504200 << 32
HELD_SOURCES = ("apple_health", "ndjson", "csv")


def create_held_batch(conn: Connection, user_id: str | None, source: str, source_ref: str | None) -> int:
    """A batch whose session holds its advisory lock until `release_batch` (or until the session ends, however it
    ends). The lock is taken before the batch is visible, so no sweep can find it running and unlocked."""
    assert source in HELD_SOURCES
    with conn.transaction():
        batch_id = create_batch(conn, user_id, source, source_ref)
        conn.execute("SELECT pg_advisory_lock(%s)", (_BATCH_LOCKS | batch_id,))
    return batch_id


def release_batch(conn: Connection, batch_id: int) -> None:
    conn.execute("SELECT pg_advisory_unlock(%s)", (_BATCH_LOCKS | batch_id,))


# Running file imports whose lock no session holds: their process is gone. Taking the lock (for this transaction
# only) proves it; what they landed and quarantined is counted from the tables (duplicates are not known: 0).
# Device syncs and synthetic loads hold no lock (one transaction each) and are never swept.
_SWEEP = """
WITH running AS (
    SELECT batch_id FROM app.ingest_batches
    WHERE status = 'running' AND source = ANY(%(sources)s)
    FOR UPDATE SKIP LOCKED
), gone AS (
    SELECT batch_id FROM running WHERE pg_try_advisory_xact_lock(%(prefix)s | batch_id)
), counted AS (
    SELECT g.batch_id,
           (SELECT count(*) FROM raw.samples s WHERE s.batch_id = g.batch_id) AS landed,
           (SELECT count(*) FROM raw.quarantine q WHERE q.batch_id = g.batch_id) AS rejected
    FROM gone g
)
UPDATE app.ingest_batches b
SET status = 'abandoned', finished_at = now(), landed_count = c.landed, rejected_count = c.rejected,
    duplicate_count = 0, skipped_count = 0, read_count = c.landed + c.rejected
FROM counted c WHERE b.batch_id = c.batch_id
RETURNING b.batch_id"""


def sweep_abandoned(conn: Connection) -> list[int]:
    """Mark running file imports whose importing session is gone as abandoned; their ids."""
    with conn.transaction():
        rows = conn.execute(_SWEEP, {"sources": list(HELD_SOURCES), "prefix": _BATCH_LOCKS}).fetchall()
        if rows:  # rare: killed imports
            conn.execute(advance_sql(_BATCH_USERS).encode(), {"batches": [row[0] for row in rows]})
    return sorted(int(str(row[0])) for row in rows)


def most_common_reject(conn: Connection, batch_id: int) -> tuple[str, int] | None:
    """The reason most of the batch's rejects share, and how many do."""
    row = conn.execute(
        "SELECT reason, count(*) FROM raw.quarantine WHERE batch_id = %s GROUP BY reason ORDER BY 2 DESC, 1 LIMIT 1",
        (batch_id,),
    ).fetchone()
    return (str(row[0]), int(str(row[1]))) if row is not None else None


# The users batches landed samples of, from the tables (abandoned imports, counts that do not name their users): a
# batch's own user, or (a batch of several users) those of its rows; the rows of a batch with a user are not read
_BATCH_USERS = """
SELECT user_id FROM app.ingest_batches WHERE batch_id = ANY(%(batches)s) AND user_id IS NOT NULL
UNION ALL
SELECT s.user_id FROM raw.samples s
WHERE s.batch_id = ANY(ARRAY(SELECT batch_id FROM app.ingest_batches
                             WHERE batch_id = ANY(%(batches)s) AND user_id IS NULL))
"""


_KNOWN_USERS = "SELECT user_id FROM app.users WHERE user_id = ANY(%(users)s)"  # a file's unknown users have none


def finish_batch(conn: Connection, batch_id: int, counts: BatchCounts, status: str = "done") -> None:
    """Record the batch's end and counts. A batch that landed samples advances its users' data versions (those the
    counts name, else those its rows hold): the read API's summary tells when their data last landed."""
    conn.execute(
        """UPDATE app.ingest_batches SET status = %s, finished_at = now(), read_count = %s, landed_count = %s,
               duplicate_count = %s, rejected_count = %s, skipped_count = %s, skipped_types = %s
           WHERE batch_id = %s""",
        (
            status,
            counts.read,
            counts.landed,
            counts.duplicates,
            counts.rejected,
            counts.skipped,
            json.dumps(counts.skipped_types),
            batch_id,
        ),
    )
    if counts.landed and counts.users:
        conn.execute(advance_sql(_KNOWN_USERS).encode(), {"users": sorted(counts.users)})
    elif counts.landed:
        conn.execute(advance_sql(_BATCH_USERS).encode(), {"batches": [batch_id]})
