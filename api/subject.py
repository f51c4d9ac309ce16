"""Whose data a read route serves: the caller's own (`/v1/me/...`) or, for an admin key, any user's
(`/v1/users/{user_id}/...`). The read routes are written once against `SubjectDep`-like dependencies built here;
`api.routers.reads` mounts them under both prefixes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Path, status

from api import audit
from api.auth import PrincipalDep, get_current_user_id
from api.deps import DbDep
from pipeline.accounts import Principal, user_exists

USER_ID_PATTERN = r"^[A-Za-z0-9_.@-]{1,64}$"  # app.users' check: any other id is no user's (422)
UserIdPath = Annotated[str, Path(pattern=USER_ID_PATTERN, description="the user whose data an admin key reads")]


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
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {user_id!r}")
    audit.note_user(user_id)
    return user_id


# The two ways of saying whose data: a route factory takes one of them.
# a dependency resolving whose data a route reads (sync or async), as the route factories take it
SubjectDependency = Callable[..., str] | Callable[..., Awaitable[str]]

OWN_DATA = get_current_user_id
ANY_USER_DATA = named_user
