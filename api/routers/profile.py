"""The caller's profile: names, gender and birth date, which the FHIR Patient export shows."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response, status

from api.auth import CurrentUserDep
from api.cached_reads import CACHED_READ_RESPONSES, IfNoneMatch, cached_answer
from api.deps import DbDep
from api.errors import BAD_REQUEST, KEYED_ROUTE_RESPONSES, NOT_FOUND, UNPROCESSABLE
from api.schemas.profile import Profile, ProfileChanges
from api.subject import OwnPendingDep, Reading
from pipeline import profiles
from pipeline.accounts import AccountError
from pipeline.infra.database import Connection

router = APIRouter(prefix="/me", tags=["me"], responses=KEYED_ROUTE_RESPONSES)


def _answer(profile: profiles.Profile) -> Profile:
    return Profile(
        user_id=profile.user_id,
        display_name=profile.display_name,
        given_name=profile.given_name,
        family_name=profile.family_name,
        gender=None if profile.gender is None else profiles.Gender(profile.gender),
        birth_date=profile.birth_date,
    )


@router.get(
    "/profile",
    response_model=Profile,
    summary="The caller's profile",
    responses={404: NOT_FOUND, **CACHED_READ_RESPONSES},
)
async def get_profile(pending: OwnPendingDep, if_none_match: IfNoneMatch = None) -> Response:
    """What the FHIR Patient (`/v1/me/fhir/Patient`) is made of; `null` for what is not given."""

    def compute(conn: Connection, reading: Reading) -> Profile:
        profile = profiles.get_profile(conn, reading.user_id)
        if profile is None:  # the key's user was deleted since it authenticated
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {reading.user_id!r}")
        return _answer(profile)

    return await cached_answer(pending, "profile", if_none_match, lambda _: {}, compute)


@router.patch(
    "/profile",
    response_model=Profile,
    summary="Change the caller's profile",
    responses={400: BAD_REQUEST, 404: NOT_FOUND, 422: UNPROCESSABLE},
)
def patch_profile(user_id: CurrentUserDep, conn: DbDep, changes: ProfileChanges) -> Profile:
    """Sets the fields sent (`null` clears one) and keeps the others; a bad value is a 422 naming the field and
    the rule. Idempotent: sending the same values again changes nothing."""
    sent = changes.model_dump(include=changes.model_fields_set, by_alias=False)
    try:
        profile = profiles.update_profile(conn, user_id, sent)
    except AccountError as exc:  # the body's checks and the store's are the same: a safety net
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    if profile is None:  # the key's user was deleted since it authenticated
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {user_id!r}")
    return _answer(profile)
