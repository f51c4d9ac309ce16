"""Whose data a read route serves: the caller's own (`/v1/me/...`) or, for an admin key, any user's
(`/v1/users/{user_id}/...`). The read routes are written once against `SubjectDep`-like dependencies built here;
`api.routers.reads` mounts them under both prefixes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status
from sqlalchemy import Engine

from api import audit
from api.auth import AuthenticatedDep, CountedKeyDep, PrincipalDep, authenticate, get_current_user_id, user_of
from api.deps import DbDep, EngineDep
from api.queries.read_state import Authenticated, ReadState, read_state
from api.response_cache import ResponseCache
from pipeline.accounts import Principal, user_exists
from pipeline.infra.database import Connection

USER_ID_PATTERN = r"^[A-Za-z0-9_.@-]{1,64}$"  # app.users' check: any other id is no user's (422)
UserIdPath = Annotated[str, Path(pattern=USER_ID_PATTERN, description="the user whose data an admin key reads")]


def _no_user(user_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no user {user_id!r}")


def require_admin(principal: PrincipalDep) -> Principal:
    """An admin key, or 403 (a user key never reads another user's data, nor its own under /v1/users)."""
    if not principal.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this route needs an admin key")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]


def named_user(user_id: UserIdPath, admin: AdminDep, conn: DbDep) -> str:
    """The user named in the path, for an admin key: 403 before anything else for a user key (it learns nothing
    about which users exist), 404 for a user that does not exist."""
    if not user_exists(conn, user_id):
        raise _no_user(user_id)
    audit.note_user(user_id)
    return user_id


@dataclass(frozen=True)
class Reading:
    """Whose data a cached read route serves, and that user's data version and local today, read before any of the
    data (`api.cached_reads.cached_answer`)."""

    user_id: str
    state: ReadState


async def own_reading(found: AuthenticatedDep) -> Reading:
    """The caller's own data, with the state read with the key (async: no I/O left to do); for a write, which
    answers through no cache."""
    return _own(found)


def _own(found: Authenticated) -> Reading:
    user_id = user_of(found.principal)
    if found.own_state is None:  # the key's user was deleted since
        raise _no_user(user_id)
    return Reading(user_id, found.own_state)


@dataclass(frozen=True)
class PendingReading:
    """A cached read's subject before any I/O: the engine to borrow the request's one connection from and how to
    resolve whose data it reads. `api.cached_reads.cached_answer` borrows the connection, resolves the reading,
    looks the answer up and computes it on one worker thread, and gives the connection back there: a read takes one
    thread hop in all and no request-long dependency (each costs a request tens of microseconds)."""

    engine: Engine
    resolve: Callable[[Connection], Reading]  # may raise the route's 401, 403 or 404
    cache: ResponseCache


async def own_pending(key: CountedKeyDep, engine: EngineDep, request: Request) -> PendingReading:
    """The caller's own data: the key's lookup and the user's state in one statement (`authenticated`)."""

    def resolve(conn: Connection) -> Reading:
        return _own(authenticate(conn, key))

    return PendingReading(engine, resolve, request.app.state.response_cache)


async def named_pending(user_id: UserIdPath, key: CountedKeyDep, engine: EngineDep, request: Request) -> PendingReading:
    """The user named in the path, for an admin key: 403 for a user key before the user is looked up, 404 for a user
    that does not exist. (A path that is no user id at all is a 422, before the key is looked up.)"""

    def resolve(conn: Connection) -> Reading:
        require_admin(authenticate(conn, key).principal)
        state = read_state(conn, user_id)
        if state is None:
            raise _no_user(user_id)
        audit.note_user(user_id)
        return Reading(user_id, state)

    return PendingReading(engine, resolve, request.app.state.response_cache)


# The two ways of saying whose data: a route factory takes one of them.
# a dependency resolving whose data a route reads (sync or async), as the route factories take it
SubjectDependency = Callable[..., str] | Callable[..., Awaitable[str]]

OWN_DATA = get_current_user_id
ANY_USER_DATA = named_user
OwnReadingDep = Annotated[Reading, Depends(own_reading)]

# the same for the cached read routes: a dependency giving the `PendingReading` of the caller or of a named user
PendingDependency = Callable[..., Awaitable[PendingReading]]
OwnPendingDep = Annotated[PendingReading, Depends(own_pending)]

OWN_READING = own_pending
ANY_USER_READING = named_pending
