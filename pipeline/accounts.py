"""Users, devices and API keys in the ``app`` schema. Used by the CLI, the API and the tests."""

from __future__ import annotations

import hashlib
import secrets
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from psycopg.rows import class_row

from pipeline.data_version import advance
from pipeline.devices import SEED_DEVICE_WORDS, DeviceClass, device_class_named, effective_priority
from pipeline.infra.database import Connection
from pipeline.privacy.fields import device_place, open_sealed, seal
from pipeline.privacy.keyring import keyring_for

KEY_PREFIX = "hp_"
DISPLAY_NAME = "app.users.display_name"  # where a sealed display name belongs (pipeline/privacy/fields.py)


class AccountError(ValueError):
    """Bad input for an account operation; the message says what."""


@dataclass(frozen=True)
class Principal:
    """Who a request acts as."""

    key_id: int
    user_id: str | None
    is_admin: bool


@dataclass(frozen=True)
class ApiKeyInfo:
    key_id: int
    prefix: str
    user_id: str | None
    is_admin: bool
    label: str | None
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


@dataclass(frozen=True)
class UserInfo:
    user_id: str
    display_name: str | None
    home_timezone: str


@dataclass(frozen=True)
class DeviceInfo:
    device_id: str
    device_class: str
    name: str
    last_sync_at: datetime | None


def hash_key(key: str) -> bytes:
    # Keys carry 256 random bits, so a fast hash is enough; a slow password hash would only cost latency.
    return hashlib.sha256(key.encode()).digest()


def create_user(conn: Connection, user_id: str, home_timezone: str = "UTC", display_name: str | None = None) -> None:
    if home_timezone not in zoneinfo.available_timezones():
        raise AccountError(f"unknown time zone {home_timezone!r} (use an IANA name such as Europe/London)")
    sealed = None
    if display_name is not None:
        sealed = seal(keyring_for(conn).data_key(user_id), DISPLAY_NAME, user_id, display_name)
    cursor = conn.execute(
        "INSERT INTO app.users (user_id, home_timezone, display_name) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
        (user_id, home_timezone, sealed),
    )
    if cursor.rowcount == 0:
        raise AccountError(f"user {user_id!r} already exists")


def user_ids(conn: Connection) -> list[str]:
    """Every user's id, in order."""
    return [str(row[0]) for row in conn.execute("SELECT user_id FROM app.users ORDER BY user_id").fetchall()]


def user_exists(conn: Connection, user_id: str) -> bool:
    return conn.execute("SELECT 1 FROM app.users WHERE user_id = %s", (user_id,)).fetchone() is not None


def get_user(conn: Connection, user_id: str) -> UserInfo | None:
    """The user, display name decrypted."""
    row = conn.execute(
        "SELECT user_id, display_name, home_timezone FROM app.users WHERE user_id = %s", (user_id,)
    ).fetchone()
    if row is None:
        return None
    sealed: bytes | None = row[1]  # type: ignore[assignment]
    name = (
        None if sealed is None else open_sealed(keyring_for(conn).existing_key(user_id), DISPLAY_NAME, user_id, sealed)
    )
    return UserInfo(user_id, name, str(row[2]))


def has_users(conn: Connection) -> bool:
    """Whether the warehouse holds any user at all (an empty one gets demo data under ``healthpipe up``)."""
    row = conn.execute("SELECT EXISTS (SELECT 1 FROM app.users)").fetchone()
    return bool(row and row[0])


def register_device(conn: Connection, user_id: str, device_id: str, device_class: str, name: str) -> bool:
    """Create or update a device of the user; True if it was new. ``device_class``: a class's name or a seed word
    (``apple_watch``, ``iphone``, ...), stored as the class."""
    named = device_class_named(device_class)
    if named is None:
        raise AccountError(
            f"unknown device class {device_class!r}; one of {', '.join(c.value for c in DeviceClass)} "
            f"or {', '.join(SEED_DEVICE_WORDS)}"
        )
    device_class = named.value
    sealed = seal(keyring_for(conn).data_key(user_id), device_place(device_id), user_id, name)
    row = conn.execute(
        """INSERT INTO app.devices (user_id, device_id, device_class, name) VALUES (%s, %s, %s, %s)
           ON CONFLICT (user_id, device_id) DO UPDATE SET device_class = EXCLUDED.device_class, name = EXCLUDED.name
           RETURNING (xmax = 0)""",
        (user_id, device_id, device_class, sealed),
    ).fetchone()
    return bool(row and row[0])


_DEVICE_COLUMNS = "device_id, device_class, name, last_sync_at"


def _opened_devices(conn: Connection, user_id: str, rows: Sequence[tuple[object, ...]]) -> list[DeviceInfo]:
    """Device rows with their names decrypted (one key lookup for all of them)."""
    if not rows:
        return []
    key = keyring_for(conn).existing_key(user_id)
    devices = []
    for device_id, device_class, sealed, last_sync_at in rows:
        name = open_sealed(key, device_place(str(device_id)), user_id, sealed)  # type: ignore[arg-type]
        devices.append(DeviceInfo(str(device_id), str(device_class), name or "", last_sync_at))  # type: ignore[arg-type]
    return devices


def list_devices(conn: Connection, user_id: str) -> list[DeviceInfo]:
    """The user's devices, by id, names decrypted."""
    rows = conn.execute(
        f"SELECT {_DEVICE_COLUMNS} FROM app.devices WHERE user_id = %s ORDER BY device_id", (user_id,)
    ).fetchall()
    return _opened_devices(conn, user_id, rows)


def get_device(conn: Connection, user_id: str, device_id: str) -> DeviceInfo | None:
    """The device, name decrypted."""
    rows = conn.execute(
        f"SELECT {_DEVICE_COLUMNS} FROM app.devices WHERE user_id = %s AND device_id = %s", (user_id, device_id)
    ).fetchall()
    devices = _opened_devices(conn, user_id, rows)
    return devices[0] if devices else None


def create_api_key(conn: Connection, user_id: str | None, is_admin: bool = False, label: str | None = None) -> str:
    """A new key; the only time the full key exists outside the caller is this return value."""
    if user_id is None and not is_admin:
        raise AccountError("a key belongs to a user, or is an admin key")
    if user_id is not None and not user_exists(conn, user_id):
        raise AccountError(f"no user {user_id!r}; create it first (healthpipe users add)")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO app.api_keys (prefix, key_hash, user_id, is_admin, label) VALUES (%s, %s, %s, %s, %s)",
        (key[:11], hash_key(key), user_id, is_admin, label),
    )
    return key


def key_prefix(conn: Connection, key_id: int) -> str | None:
    """The public prefix of a key (``hp_`` and 8 characters), by id: what logs and audit rows may name."""
    row = conn.execute("SELECT prefix FROM app.api_keys WHERE key_id = %s", (key_id,)).fetchone()
    return None if row is None else str(row[0])


def revoke_api_key(conn: Connection, prefix: str) -> bool:
    cursor = conn.execute(
        "UPDATE app.api_keys SET revoked_at = now() WHERE prefix = %s AND revoked_at IS NULL", (prefix,)
    )
    return cursor.rowcount == 1


def list_api_keys(conn: Connection) -> list[ApiKeyInfo]:
    rows = conn.execute(
        """SELECT key_id, prefix, user_id, is_admin, label, created_at, revoked_at, last_used_at
           FROM app.api_keys ORDER BY key_id"""
    ).fetchall()
    return [ApiKeyInfo(*row) for row in rows]  # type: ignore[arg-type]


def key_hash_of(key: str) -> bytes | None:
    """The stored hash a presented key is looked up by; None for what cannot be a key (no lookup needed)."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    return hash_key(key)


def touch_key(conn: Connection, key_id: int) -> None:
    """Record that a key was used. Callers do it at most once a minute per key (``last_used_at`` older than that),
    so a busy key does not turn every read into a write."""
    conn.execute("UPDATE app.api_keys SET last_used_at = now() WHERE key_id = %s", (key_id,))


def source_priority(conn: Connection, user_id: str) -> tuple[tuple[DeviceClass, ...], bool]:
    """The user's effective source priority (highest first) and whether it is their own rather than the default."""
    row = conn.execute("SELECT source_priority FROM app.users WHERE user_id = %s", (user_id,)).fetchone()
    if row is None:
        raise AccountError(f"no user {user_id!r}")
    stored: list[str] | None = row[0]  # type: ignore[assignment]
    return effective_priority(stored), stored is not None


def set_source_priority(conn: Connection, user_id: str, order: Sequence[str] | None) -> tuple[DeviceClass, ...]:
    """Set the user's own order of device classes (highest first; classes left out follow in the default order), or
    with ``None`` go back to the default. Returns the effective order. A real change is recorded in
    ``app.source_priority_changes``, from which the sensor ``source_priority_changes`` recomputes the user's days."""
    if order is not None:
        unknown = [name for name in order if name not in DeviceClass._value2member_map_]
        if unknown:
            known = ", ".join(c.value for c in DeviceClass)
            raise AccountError(f"unknown device class(es) {', '.join(map(repr, unknown))}; known: {known}")
        if not order or len(set(order)) != len(order):
            raise AccountError("give each device class at most once, and at least one")
    stored = list(order) if order is not None else None
    with conn.transaction():
        if not user_exists(conn, user_id):
            raise AccountError(f"no user {user_id!r}")
        changed = conn.execute(
            "UPDATE app.users SET source_priority = %s WHERE user_id = %s AND source_priority IS DISTINCT FROM %s",
            (stored, user_id, stored),
        ).rowcount
        if changed:
            conn.execute("INSERT INTO app.source_priority_changes (user_id) VALUES (%s)", (user_id,))
            advance(conn, [user_id])
    return effective_priority(order)


def step_goal(conn: Connection, user_id: str) -> int | None:
    """The user's own daily step goal; None: the catalogue's default. Raises for an unknown user."""
    row = conn.execute("SELECT step_goal FROM app.users WHERE user_id = %s", (user_id,)).fetchone()
    if row is None:
        raise AccountError(f"no user {user_id!r}")
    return None if row[0] is None else int(row[0])  # type: ignore[call-overload]


def set_step_goal(conn: Connection, user_id: str, steps: int | None) -> None:
    """Set the user's daily step goal (None: back to the catalogue's). The insights use it from their next
    evaluation on; days already evaluated keep what they found until they are evaluated again."""
    if steps is not None and not 0 < steps <= 100_000:
        raise AccountError(f"a step goal is a whole number of steps from 1 to 100,000, not {steps}")
    with conn.transaction():
        if conn.execute("UPDATE app.users SET step_goal = %s WHERE user_id = %s", (steps, user_id)).rowcount == 0:
            raise AccountError(f"no user {user_id!r}")
        advance(conn, [user_id])  # the summary shows the goal


@dataclass(frozen=True)
class UserOverview:
    user_id: str
    home_timezone: str
    landed_samples: int
    first_day: date | None  # of the daily marts
    last_day: date | None
    devices: int


def user_overview(conn: Connection) -> list[UserOverview]:
    """Every user with what is held of theirs: landed samples, the span of their daily marts, their devices. One
    statement; the counts are aggregated per user before the join, so no user multiplies another's rows."""
    with conn.cursor(row_factory=class_row(UserOverview)) as cursor:
        return cursor.execute(
            """SELECT u.user_id, u.home_timezone, coalesce(r.samples, 0) AS landed_samples,
                      d.first_day, d.last_day, coalesce(v.devices, 0) AS devices
               FROM app.users u
               LEFT JOIN (SELECT user_id, count(*) AS samples FROM raw.samples GROUP BY user_id) r USING (user_id)
               LEFT JOIN (SELECT user_id, min(local_date) AS first_day, max(local_date) AS last_day
                          FROM marts.daily GROUP BY user_id) d USING (user_id)
               LEFT JOIN (SELECT user_id, count(*) AS devices FROM app.devices GROUP BY user_id) v USING (user_id)
               ORDER BY u.user_id"""
        ).fetchall()
