"""Share link codes: random, shown once, stored only as their SHA-256.

A code is ``secrets.token_urlsafe(24)``: 24 random bytes (192 bits), 32 URL-safe characters. With that much
randomness a fast hash suffices (nobody can enumerate the space), as for API keys; a slow password hash would only cost
every public read its latency."""

from __future__ import annotations

import hashlib
import re
import secrets

CODE_BYTES = 24
_CODE = re.compile(r"[A-Za-z0-9_-]{32}")  # what token_urlsafe(24) writes: base64url of 24 bytes, no padding


def new_code() -> str:
    return secrets.token_urlsafe(CODE_BYTES)


def code_hash(code: str) -> bytes:
    return hashlib.sha256(code.encode()).digest()


def could_be_a_code(text: str) -> bool:
    """Whether ``text`` has a code's shape; anything else is no share's, without asking the database."""
    return _CODE.fullmatch(text) is not None
