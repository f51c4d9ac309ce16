"""ETags and cache keys of the read routes, and `If-None-Match` (RFC 9110 §8.8.3, §13.1.2). Pure functions.

An answer is a function of: the shape of the response models, the route, the user, the user's data version and the
route's parameters after their defaults are resolved (``/summary`` without ``date`` answers the user's local today:
the resolved date is part of the key, so the ETag moves at local midnight with no write). One digest of those is
both the response cache's key and the ETag. The ETag is weak (``W/"..."``): it names the answer by what it is made
of, not by its bytes."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

Param = str | int | dt.date | Enum | Sequence[str] | None

# an entity-tag: optional weak prefix, then a quoted opaque tag (no DQUOTE inside)
_ENTITY_TAG = re.compile(r'\s*(?:W/)?"([^"]*)"\s*(?:,|$)')


def _text(value: Param) -> str:
    if value is None:
        return ""
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str | int):
        return str(value)
    return ",".join(value)  # an ordered list (aggregates' types: their order is the answer's order)


@dataclass(frozen=True)
class ReadKey:
    """What one read answer depends on. ``route``: the route's name, shared by its /me and /users/{id} mounts (same
    user, same answer). ``user_since``: when the user was created: a user erased and later created again under the
    same id starts its data versions again, and must not meet the erased user's answers under them."""

    shapes: str
    route: str
    user_id: str
    version: int
    params: Mapping[str, Param]
    user_since: str = ""

    @property
    def digest(self) -> str:
        parts = [self.shapes, self.route, self.user_id, self.user_since, str(self.version)]
        parts += [f"{name}={_text(value)}" for name, value in sorted(self.params.items())]
        # NUL cannot occur in a user id, a route or a validated parameter: the parts cannot run into each other
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]

    @property
    def etag(self) -> str:
        return f'W/"{self.digest}"'


def opaque_tag(etag: str) -> str:
    """``abc`` of ``W/"abc"`` or ``"abc"``."""
    return etag.removeprefix("W/").strip('"')


def none_match_hits(if_none_match: str, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (or is ``*``), by weak comparison: ``W/`` is ignored on
    both sides. A header that is not a list of entity-tags matches nothing (the full answer is sent)."""
    header = if_none_match.strip()
    if header == "*":
        return True
    wanted = opaque_tag(etag)
    position, found = 0, False
    while position < len(header):
        match = _ENTITY_TAG.match(header, position)
        if match is None or match.end() == position:
            return False
        found = found or match.group(1) == wanted
        position = match.end()
    return found
