"""Single values encrypted with their user's data key: profile fields and device names (a few per user, so one
AES-GCM call each is nothing). A sealed value is ``version byte || nonce || ciphertext and tag``; its associated
data names the column, the user and (for a device) the device, so a ciphertext copied to another row, column or
user does not open."""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pipeline.privacy.keyring import NONCE_BYTES

_VERSION = b"\x01"


class SealedValueError(ValueError):
    """A sealed value does not open with its user's key in its place: altered, or moved from elsewhere."""


def _aad(place: str, user_id: str) -> bytes:
    return b"healthpipe field\x00" + place.encode() + b"\x00" + user_id.encode()


def seal(data_key: bytes, place: str, user_id: str, value: str | None) -> bytes | None:
    """``value`` encrypted for ``place`` (e.g. ``app.users.given_name``) of ``user_id``; None stays None."""
    if value is None:
        return None
    nonce = secrets.token_bytes(NONCE_BYTES)
    return _VERSION + nonce + AESGCM(data_key).encrypt(nonce, value.encode(), _aad(place, user_id))


def open_sealed(data_key: bytes, place: str, user_id: str, sealed: bytes | memoryview | None) -> str | None:
    """The value `seal` encrypted; None stays None."""
    if sealed is None:
        return None
    sealed = bytes(sealed)
    if sealed[:1] != _VERSION:
        raise SealedValueError(f"{place} of {user_id!r} is not a sealed value")
    try:
        plain = AESGCM(data_key).decrypt(sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :], _aad(place, user_id))
    except InvalidTag:
        raise SealedValueError(f"{place} of {user_id!r} does not open with the user's key") from None
    return plain.decode()


def device_place(device_id: str) -> str:
    return f"app.devices.name/{device_id}"
