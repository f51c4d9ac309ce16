"""Envelope encryption: a random AES-256-GCM data key per subject (a user), wrapped by the master key, kept in the
key store. ``keyring_for(conn)`` gives the keyring of the warehouse ``conn`` belongs to; ``destroy_user_key``
destroys a user's key (crypto-shredding).

Unwrapped data keys are not cached: every use reads the key store (one indexed row), so a destroyed key is gone for
every process at once.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections import OrderedDict

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pipeline.infra.database import Connection
from pipeline.infra.settings import Settings
from pipeline.privacy import master
from pipeline.privacy.keystore import KeyStore, KeyStoreLocation, WrappedKey, configured_location, derived_location
from pipeline.privacy.master import MasterKey, MasterKeyError

NONCE_BYTES = 12
# The subject of quarantined rows that name no user (a malformed line, a record without a user id): one shared key,
# which an operator may destroy on its own to shred all of them at once. User ids cannot contain ':'.
UNATTRIBUTED = ":unattributed"


class KeyDestroyedError(LookupError):
    """The subject has no data key (destroyed by an erasure): what it encrypted cannot be read any more."""


def _wrap_aad(subject: str) -> bytes:
    return b"healthpipe data key\x00" + subject.encode()


def wrap(master_key: MasterKey, subject: str, data_key: bytes) -> WrappedKey:
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = AESGCM(master_key.key).encrypt(nonce, data_key, _wrap_aad(subject))
    return WrappedKey(subject, master_key.key_id, nonce + sealed)


def unwrap(master_key: MasterKey, key: WrappedKey) -> bytes:
    if key.master_id != master_key.key_id:
        raise MasterKeyError(
            f"the data key of {key.subject!r} was wrapped by master key {key.master_id.hex()}, not by the one from "
            f"{master_key.source} ({master_key.key_id.hex()}): configure the master key the key store was made with"
        )
    try:
        return AESGCM(master_key.key).decrypt(
            key.wrapped[:NONCE_BYTES], key.wrapped[NONCE_BYTES:], _wrap_aad(key.subject)
        )
    except InvalidTag:
        raise MasterKeyError(f"the wrapped data key of {key.subject!r} does not open: it was altered") from None


class Keyring:
    """Data keys of one key store under one master key. Thread-safe."""

    def __init__(self, store: KeyStore, master_key: MasterKey | None = None, settings: Settings | None = None) -> None:
        self.store = store
        self._master = master_key
        self._settings = settings
        self._lock = threading.Lock()

    @property
    def master(self) -> MasterKey:
        with self._lock:
            if self._master is None:
                self._master = load_master_key(self._settings or Settings(), self.store)
            return self._master

    def _unwrap(self, stored: WrappedKey) -> bytes:
        if stored.master_id != self.master.key_id and self._settings is not None:
            with self._lock:  # rotated by another process since this one loaded the key: read it again
                self._master = None
        return unwrap(self.master, stored)

    def data_key(self, subject: str) -> bytes:
        """The subject's data key, created (and stored wrapped) on first use."""
        stored = self.store.get(subject)
        if stored is None:
            stored = self.store.add(wrap(self.master, subject, secrets.token_bytes(32)))
        return self._unwrap(stored)

    def existing_key(self, subject: str) -> bytes:
        """The subject's data key; `KeyDestroyedError` when it has none (a reader never creates one)."""
        stored = self.store.get(subject)
        if stored is None:
            raise KeyDestroyedError(f"no data key for {subject!r}: its encrypted data cannot be read")
        return self._unwrap(stored)

    def destroy(self, subject: str) -> bool:
        """Destroy the subject's data key; True if it had one. Idempotent."""
        return self.store.delete(subject)

    def rotate_master(self, new_master: MasterKey) -> int:
        """Re-wrap every data key under ``new_master`` (data stays as it is); how many keys. All or nothing."""
        old = self.master
        count = self.store.rewrap_all(
            lambda key: key if key.master_id == new_master.key_id else wrap(new_master, key.subject, unwrap(old, key))
        )
        with self._lock:
            self._master = new_master
        return count


def load_master_key(settings: Settings, store: KeyStore) -> MasterKey:
    """The configured master key. From ``master_key`` if set; else from the key file, which is created when it does
    not exist and the key store holds no key yet (a fresh install). A rotation interrupted after the key store
    switched but before the file was replaced is finished here (the pending file is the key the store uses)."""
    if settings.master_key is not None:
        return master.decode(settings.master_key.get_secret_value(), "HEALTHPIPE_MASTER_KEY")
    path = settings.resolved_master_key_file
    pending = master.pending_path(path)
    in_use = store.master_ids()
    if pending.exists():
        new = master.read_file(pending)
        if in_use and in_use <= {new.key_id}:
            os.replace(pending, path)
            return master.MasterKey(new.key, str(path))
        pending.unlink()  # the rotation did not reach the store: the old key is still the one
    if path.exists():
        return master.read_file(path)
    if in_use:
        raise MasterKeyError(
            f"no master key at {path} (HEALTHPIPE_MASTER_KEY_FILE), but the key store holds keys wrapped by "
            f"{', '.join(sorted(k.hex() for k in in_use))}: restore that key file or set HEALTHPIPE_MASTER_KEY"
        )
    created = master.generate(str(path))
    try:
        master.write_file(path, created)
    except FileExistsError:  # another process created it first
        return master.read_file(path)
    return created


_KEYRINGS: OrderedDict[tuple[str, str | None, str], Keyring] = OrderedDict()
_KEYRINGS_LOCK = threading.Lock()
_MAX_KEYRINGS = 8  # one per warehouse database a process talks to; tests use many


def keyring_for(conn: Connection, settings: Settings | None = None) -> Keyring:
    """The keyring of the warehouse that ``conn`` is connected to (its key store and the configured master key)."""
    settings = settings or Settings()
    location: KeyStoreLocation = (
        configured_location(settings.keystore_url.get_secret_value())
        if settings.keystore_url is not None
        else derived_location(conn)
    )
    secret = settings.master_key.get_secret_value() if settings.master_key is not None else None
    cache_key = (location.cache_key, secret, str(settings.resolved_master_key_file))
    with _KEYRINGS_LOCK:
        keyring = _KEYRINGS.get(cache_key)
        if keyring is not None:
            _KEYRINGS.move_to_end(cache_key)
            return keyring
        keyring = Keyring(KeyStore(location), settings=settings)
        _KEYRINGS[cache_key] = keyring
        while len(_KEYRINGS) > _MAX_KEYRINGS:
            _, evicted = _KEYRINGS.popitem(last=False)
            evicted.store.close()
        return keyring


def destroy_user_key(conn: Connection, user_id: str) -> bool:
    """Destroy ``user_id``'s data key in the key store of the warehouse ``conn`` is connected to: every value
    encrypted under it, in this database and in any dump or backup of it, can no longer be decrypted.

    Returns True if the user had a key, False if not (already destroyed, or never had one): idempotent. Call it
    after the transaction deleting the user's rows has committed (a failed deletion then leaves readable rows
    that can be deleted again). ``conn`` is only used to find the key store; no transaction of it is involved."""
    return keyring_for(conn).destroy(user_id)
