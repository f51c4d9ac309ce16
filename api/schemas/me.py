"""The caller's own account."""

from __future__ import annotations

from api.schemas.base import CamelModel


class Me(CamelModel):
    user_id: str
    display_name: str | None
    home_timezone: str
