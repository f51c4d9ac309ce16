"""Bearer API keys: every route that serves personal data depends on `CurrentUserDep` (or `PrincipalDep`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from api import audit
from api.deps import RequestConnectionDep
from api.queries.read_state import Authenticated, authenticated
from api.rate_limits import rate_limits
from pipeline.accounts import Principal
from pipeline.infra.database import Connection

_bearer = HTTPBearer(auto_error=False, description="API key created with `healthpipe keys create`")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


async def get_counted_key(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)], request: Request
) -> str:
    """The key a request presents (401 without one), counted against its rate limit (429 over it) before it is
    looked up: a flood of requests, known key or not, is refused without borrowing a database connection. Counted in
    the event loop when the counters are this process's (no I/O), on a worker thread when they are Redis's. One
    dependency, not two: each one a request resolves costs it tens of microseconds."""
    if credentials is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing bearer API key", headers=_CHALLENGE)
    key = credentials.credentials
    limits = rate_limits(request)
    if limits.counters.blocking:
        await run_in_threadpool(limits.hit_key, key)
    else:
        limits.hit_key(key)
    return key


CountedKeyDep = Annotated[str, Depends(get_counted_key)]


def authenticate(conn: Connection, key: str) -> Authenticated:
    """The key's principal with its user's read state (`authenticated`), noted for the audit; 401 for an unknown or
    revoked key."""
    found = authenticated(conn, key)
    if found is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid or revoked API key", headers=_CHALLENGE)
    audit.note_key(found.principal.key_id)
    return found


async def get_authenticated(key: CountedKeyDep, slot: RequestConnectionDep) -> Authenticated:
    """`authenticate` as a dependency, on the thread hop that borrows the request's connection. Its user's data
    version and local today come with it: what a cached read of the caller's own data needs
    (`api.subject.own_reading`)."""
    return await run_in_threadpool(lambda: authenticate(slot.connection(), key))


AuthenticatedDep = Annotated[Authenticated, Depends(get_authenticated)]


async def get_principal(found: AuthenticatedDep) -> Principal:  # async: no thread hop for an attribute
    return found.principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def user_of(principal: Principal) -> str:
    """The user a key belongs to; an admin key (no user) is refused with 403."""
    if principal.user_id is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this admin key belongs to no user: it has no /v1/me data")
    audit.note_user(principal.user_id)
    return principal.user_id


async def get_current_user_id(principal: PrincipalDep) -> str:
    """`user_of` as a dependency (async: no thread hop for a check that does no I/O)."""
    return user_of(principal)


CurrentUserDep = Annotated[str, Depends(get_current_user_id)]
