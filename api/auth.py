"""Bearer API keys: every route that serves personal data depends on `CurrentUserDep` (or `PrincipalDep`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import DbDep
from pipeline.accounts import Principal, authenticate

_bearer = HTTPBearer(auto_error=False, description="API key created with `healthpipe keys create`")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


async def get_bearer_key(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    """The key a request presents. Resolved before the database connection, so a request without one is refused
    without borrowing a connection."""
    if credentials is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing bearer API key", headers=_CHALLENGE)
    return credentials.credentials


def get_principal(key: Annotated[str, Depends(get_bearer_key)], conn: DbDep) -> Principal:
    principal = authenticate(conn, key)
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid or revoked API key", headers=_CHALLENGE)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_current_user_id(principal: PrincipalDep) -> str:
    if principal.user_id is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this admin key belongs to no user: it has no /v1/me data")
    return principal.user_id


CurrentUserDep = Annotated[str, Depends(get_current_user_id)]
