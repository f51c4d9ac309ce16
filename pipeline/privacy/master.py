"""The master key: 32 random bytes that wrap (encrypt) every data key in the key store, and nothing else.

It comes from the setting ``master_key`` (base64) or from a key file (``master_key_file``, by default
``<home>/master.key``, mode 0600). Its *id* is a short hash that the key store records beside every wrapped key, so
a wrong master key is named as such instead of failing as corrupt data, and a rotation knows which rows it has done.
The key itself is never logged, printed (except by ``healthpipe keys new-master``, on request) or stored in a
database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

KEY_BYTES = 32  # AES-256
_FILE_PREFIX = "healthpipe-master-key-v1:"


class MasterKeyError(RuntimeError):
    """The master key is missing, malformed or not the one the key store's keys were wrapped with."""


@dataclass(frozen=True)
class MasterKey:
    key: bytes = field(repr=False)
    source: str  # where it came from, for messages: "HEALTHPIPE_MASTER_KEY" or the file's path

    def __post_init__(self) -> None:
        if len(self.key) != KEY_BYTES:
            raise MasterKeyError(f"a master key is {KEY_BYTES} bytes, the one from {self.source} is {len(self.key)}")

    @property
    def key_id(self) -> bytes:
        """8 bytes that name this key (a hash; the key cannot be recovered from it)."""
        return hashlib.sha256(b"healthpipe master key id\x00" + self.key).digest()[:8]

    def encoded(self) -> str:
        return base64.b64encode(self.key).decode()


def generate(source: str) -> MasterKey:
    return MasterKey(secrets.token_bytes(KEY_BYTES), source)


def decode(text: str, source: str) -> MasterKey:
    """A key written as base64 (with or without the key file's prefix)."""
    body = text.strip().removeprefix(_FILE_PREFIX)
    try:
        key = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise MasterKeyError(f"the master key in {source} is not base64") from None
    return MasterKey(key, source)


def read_file(path: Path) -> MasterKey:
    return decode(path.read_text(encoding="ascii"), str(path))


def write_file(path: Path, key: MasterKey) -> None:
    """Write ``key`` to ``path`` durably, readable by its owner only; never over an existing file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(f"{_FILE_PREFIX}{key.encoded()}\n")
        handle.flush()
        os.fsync(handle.fileno())


def pending_path(path: Path) -> Path:
    """Where a rotation writes the new key before the key store has switched to it."""
    return path.with_name(path.name + ".new")
