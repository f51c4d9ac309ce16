"""Migration 0018's Python step: encrypt what an existing database holds in the plain columns that the SQL part
renamed ``*_plain``, then drop them. Runs inside the migration's transaction, so either every value moves encrypted
or nothing changes. Users and devices are a loop over users (a few AES calls each); samples' metadata and
quarantined payloads are sealed in bulk, a ciphertext per (user, batch of rows), as the landing does."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pyarrow as pa

from pipeline.infra.database import Connection
from pipeline.privacy.chunks import seal_column, store_chunks
from pipeline.privacy.fields import device_place, seal
from pipeline.privacy.keyring import Keyring, keyring_for

PROFILE_COLUMNS = ("display_name", "given_name", "family_name", "gender", "birth_date")
_ROWS_PER_READ = 100_000


def seal_plain_columns(conn: Connection) -> None:
    keys: Keyring | None = None

    def keyring() -> Keyring:  # only a database holding something to encrypt needs the key store
        nonlocal keys
        keys = keys or keyring_for(conn)
        return keys

    _seal_users(conn, keyring)
    _seal_devices(conn, keyring)
    _seal_texts(
        conn,
        keyring,
        "SELECT user_id, start_utc, identity, metadata_plain::text FROM raw.samples WHERE metadata_plain IS NOT NULL",
        "user_id text, start_utc timestamptz, identity uuid",
        """UPDATE raw.samples s SET metadata_chunk = r.chunk_id, metadata_slot = r.slot FROM sealed_refs r
           WHERE (s.user_id, s.start_utc, s.identity) = (r.user_id, r.start_utc, r.identity)""",
    )
    conn.execute("ALTER TABLE raw.samples DROP COLUMN metadata_plain")
    _seal_texts(
        conn,
        keyring,
        "SELECT user_id, quarantine_id, payload_plain::text FROM raw.quarantine",
        "user_id text, quarantine_id bigint",
        """UPDATE raw.quarantine q SET payload_chunk = r.chunk_id, payload_slot = r.slot FROM sealed_refs r
           WHERE q.quarantine_id = r.quarantine_id""",
    )
    conn.execute(
        """ALTER TABLE raw.quarantine DROP COLUMN payload_plain, ALTER COLUMN payload_chunk SET NOT NULL,
           ALTER COLUMN payload_slot SET NOT NULL"""
    )


def _seal_users(conn: Connection, keyring: Callable[[], Keyring]) -> None:
    plain = ", ".join(f"{name}_plain" for name in PROFILE_COLUMNS)
    rows = conn.execute(
        f"SELECT user_id, {plain} FROM app.users WHERE num_nonnulls({plain}) > 0 ORDER BY user_id"
    ).fetchall()
    updates = []
    for user_id, *values in rows:
        key = keyring().data_key(str(user_id))
        texts = [v.isoformat() if isinstance(v, dt.date) else None if v is None else str(v) for v in values]
        sealed = [
            seal(key, f"app.users.{name}", str(user_id), text)
            for name, text in zip(PROFILE_COLUMNS, texts, strict=True)
        ]
        updates.append((*sealed, user_id))
    if updates:
        with conn.cursor() as cursor:
            cursor.executemany(
                f"UPDATE app.users SET ({', '.join(PROFILE_COLUMNS)}) = ROW(%s, %s, %s, %s, %s) WHERE user_id = %s",
                updates,
            )
    conn.execute(f"ALTER TABLE app.users {', '.join(f'DROP COLUMN {name}_plain' for name in PROFILE_COLUMNS)}")


def _seal_devices(conn: Connection, keyring: Callable[[], Keyring]) -> None:
    rows = conn.execute("SELECT user_id, device_id, name_plain FROM app.devices ORDER BY user_id").fetchall()
    updates = []
    for user_id, device_id, name in rows:
        key = keyring().data_key(str(user_id))
        updates.append((seal(key, device_place(str(device_id)), str(user_id), str(name)), user_id, device_id))
    if updates:
        with conn.cursor() as cursor:
            cursor.executemany("UPDATE app.devices SET name = %s WHERE user_id = %s AND device_id = %s", updates)
    conn.execute("ALTER TABLE app.devices DROP COLUMN name_plain, ALTER COLUMN name SET NOT NULL")


def _seal_texts(conn: Connection, keyring: Callable[[], Keyring], select: str, key_columns: str, update: str) -> None:
    """Read (user_id, row key..., text) rows ``_ROWS_PER_READ`` at a time, seal each read's texts a chunk per user,
    and point the rows at their chunk and slot."""
    conn.execute(f"CREATE TEMP TABLE sealed_refs ({key_columns}, chunk_id uuid, slot integer) ON COMMIT DROP".encode())
    names = [part.split()[0] for part in key_columns.split(", ")]
    with conn.cursor(name="plain_texts") as cursor:
        cursor.execute(select.encode())
        while rows := cursor.fetchmany(_ROWS_PER_READ):
            columns = list(zip(*rows, strict=True))
            sealed = seal_column(
                keyring(),
                pa.array(columns[0], pa.string()),
                pa.array(columns[-1], pa.string()),
            )
            store_chunks(conn, sealed.chunks)
            refs = zip(*columns[:-1], sealed.chunk_ids.to_pylist(), sealed.slots.tolist(), strict=True)
            with conn.cursor().copy(
                f"COPY sealed_refs ({', '.join(names)}, chunk_id, slot) FROM STDIN".encode()
            ) as copy:
                for ref in refs:
                    copy.write_row(ref)
    conn.execute(update.encode())
    conn.execute("DROP TABLE sealed_refs")
