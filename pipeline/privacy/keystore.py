"""The key store: the wrapped data keys, in a PostgreSQL database of their own.

Why a separate database: a dump or backup of the warehouse must not carry the keys that open it, or destroying a
user's key (crypto-shredding) would leave every earlier backup readable with the same master key. ``pg_dump`` of the
warehouse never includes another database, the analyst role may not connect to this one, and a destroyed key's row
is deleted and vacuumed at once (no dead tuple keeps it). Its own backups, if any, must be short-lived
(docs/privacy.md, "Key store").

Unset ``keystore_url``: database ``<warehouse database>_keys`` on the warehouse's server, with the warehouse
connection's credentials, created on first use (CONNECT revoked from PUBLIC).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import psycopg
import psycopg.errors
from psycopg import sql
from psycopg.conninfo import make_conninfo

from pipeline.infra.database import Connection

_SCHEMA = (resources.files("pipeline.privacy") / "sql" / "keystore.sql").read_text(encoding="utf-8")
KEYSTORE_SUFFIX = "_keys"


@dataclass(frozen=True)
class WrappedKey:
    subject: str
    master_id: bytes
    wrapped: bytes


@dataclass(frozen=True)
class KeyStoreLocation:
    conninfo: str  # libpq connection string, password included: never logged
    create_from: str | None  # a connection string on the same server that may create the database, when derived
    database: str

    @property
    def cache_key(self) -> str:
        return self.conninfo


def derived_location(conn: Connection) -> KeyStoreLocation:
    """``<database>_keys`` on the server of the warehouse connection ``conn``, with its credentials."""
    info = conn.info
    params = {k: v for k, v in info.get_parameters().items() if k in ("host", "port", "user", "sslmode")}
    if info.password:
        params["password"] = info.password
    params.setdefault("host", info.host)
    params.setdefault("port", str(info.port))
    database = f"{info.dbname}{KEYSTORE_SUFFIX}"
    return KeyStoreLocation(
        make_conninfo("", **params, dbname=database), make_conninfo("", **params, dbname=info.dbname), database
    )


def configured_location(url: str) -> KeyStoreLocation:
    """The key store at an explicit URL (``keystore_url``); the database must exist."""
    conninfo = make_conninfo(url)
    return KeyStoreLocation(conninfo, None, psycopg.conninfo.conninfo_to_dict(conninfo).get("dbname") or "")  # type: ignore[arg-type]


def as_bytes(value: object) -> bytes:
    """A bytea column's value (psycopg gives bytes)."""
    assert isinstance(value, bytes | memoryview), type(value)
    return bytes(value)


class KeyStore:
    """One connection to the key database, shared by the threads of a process under a lock; reopened when lost."""

    def __init__(self, location: KeyStoreLocation) -> None:
        self.location = location
        self._lock = threading.Lock()
        self._conn: Connection | None = None

    def _connection(self) -> Connection:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        try:
            conn = psycopg.connect(self.location.conninfo, autocommit=True)
        except psycopg.OperationalError as exc:
            if self.location.create_from is None or "does not exist" not in str(exc):
                raise
            self._create_database()
            conn = psycopg.connect(self.location.conninfo, autocommit=True)
        conn.execute(_SCHEMA.encode())
        self._conn = conn
        return conn

    def _create_database(self) -> None:
        assert self.location.create_from is not None
        name = sql.Identifier(self.location.database)
        with psycopg.connect(self.location.create_from, autocommit=True) as admin:
            try:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(name))
            except psycopg.errors.DuplicateDatabase:
                return  # another process created it first
            admin.execute(sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(name))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def get(self, subject: str) -> WrappedKey | None:
        with self._lock:
            row = (
                self._connection()
                .execute("SELECT master_id, wrapped FROM data_keys WHERE subject = %s", (subject,))
                .fetchone()
            )
        return None if row is None else WrappedKey(subject, as_bytes(row[0]), as_bytes(row[1]))

    def add(self, key: WrappedKey) -> WrappedKey:
        """Store ``key`` unless the subject has one already; the subject's key either way (first writer wins)."""
        with self._lock:
            row = (
                self._connection()
                .execute(
                    """WITH added AS (
                           INSERT INTO data_keys (subject, master_id, wrapped) VALUES (%s, %s, %s)
                           ON CONFLICT (subject) DO NOTHING RETURNING master_id, wrapped)
                       SELECT master_id, wrapped FROM added
                       UNION ALL SELECT master_id, wrapped FROM data_keys WHERE subject = %s""",
                    (key.subject, key.master_id, key.wrapped, key.subject),
                )
                .fetchone()
            )
        if row is None:  # another process added one after this statement's snapshot: read it now
            stored = self.get(key.subject)
            assert stored is not None
            return stored
        return WrappedKey(key.subject, as_bytes(row[0]), as_bytes(row[1]))

    def delete(self, subject: str) -> bool:
        """Delete the subject's key and rewrite the table, so no dead row version keeps it in the table's file."""
        with self._lock:
            conn = self._connection()
            deleted = conn.execute("DELETE FROM data_keys WHERE subject = %s", (subject,)).rowcount
            if deleted:
                conn.execute("VACUUM FULL data_keys")  # a new file without the row (a row per user: small)
        return deleted > 0

    def master_ids(self) -> set[bytes]:
        with self._lock:
            rows = self._connection().execute("SELECT DISTINCT master_id FROM data_keys").fetchall()
        return {as_bytes(row[0]) for row in rows}

    def rewrap_all(self, rewrap: Callable[[WrappedKey], WrappedKey]) -> int:
        """Replace every wrapped key by ``rewrap(key)`` in one transaction (all or nothing); how many."""
        with self._lock:
            conn = self._connection()
            with conn.transaction():
                rows = conn.execute("SELECT subject, master_id, wrapped FROM data_keys FOR UPDATE").fetchall()
                updated = [rewrap(WrappedKey(str(s), as_bytes(m), as_bytes(w))) for s, m, w in rows]
                with conn.cursor() as cursor:
                    cursor.executemany(
                        "UPDATE data_keys SET master_id = %s, wrapped = %s WHERE subject = %s",
                        [(key.master_id, key.wrapped, key.subject) for key in updated],
                    )
            conn.execute("VACUUM FULL data_keys")  # the keys wrapped by the old master key go with the old file
        return len(updated)
