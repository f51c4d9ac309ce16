"""The caller's own account."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from sqlalchemy import text

from api.auth import CurrentUserDep
from api.deps import ConnectionDep

router = APIRouter(prefix="/v1/me", tags=["me"])


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True)


class Me(CamelModel):
    user_id: str
    display_name: str | None
    home_timezone: str


@router.get("", response_model=Me, summary="Who the API key belongs to")
def get_me(user_id: CurrentUserDep, conn: ConnectionDep) -> Me:
    row = conn.execute(
        text("SELECT user_id, display_name, home_timezone FROM app.users WHERE user_id = :u"), {"u": user_id}
    ).one()
    return Me(user_id=row.user_id, display_name=row.display_name, home_timezone=row.home_timezone)
