"""The caller's own account."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from api import audit
from api.auth import CurrentUserDep
from api.deps import DbDep
from api.errors import KEYED_ROUTE_RESPONSES, NOT_FOUND
from api.schemas.me import Me
from pipeline.accounts import get_user

router = APIRouter(prefix="/me", tags=["me"], responses=KEYED_ROUTE_RESPONSES)


@router.get("", response_model=Me, summary="Who the API key belongs to", responses={404: NOT_FOUND})
def get_me(user_id: CurrentUserDep, conn: DbDep) -> Me:
    user = get_user(conn, user_id)
    if user is None:  # the key's user was deleted since it authenticated
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {user_id!r}")
    audit.note_records(1)
    return Me(user_id=user.user_id, display_name=user.display_name, home_timezone=user.home_timezone)
