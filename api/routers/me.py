"""The caller's own account: who the key belongs to, and erasing all of it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status

from api import audit
from api.auth import CurrentUserDep, PrincipalDep, user_of
from api.deps import DbDep, EngineDep
from api.errors import KEYED_ROUTE_RESPONSES, NOT_FOUND, UNPROCESSABLE
from api.schemas.me import Erasure, Me
from pipeline.accounts import get_user, key_prefix
from pipeline.infra.database import dagster_storage_url
from pipeline.infra.settings import Settings

router = APIRouter(prefix="/me", tags=["me"], responses=KEYED_ROUTE_RESPONSES)


@router.get("", response_model=Me, summary="Who the API key belongs to", responses={404: NOT_FOUND})
def get_me(user_id: CurrentUserDep, conn: DbDep) -> Me:
    user = get_user(conn, user_id)
    if user is None:  # the key's user was deleted since it authenticated
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {user_id!r}")
    audit.note_records(1)
    return Me(user_id=user.user_id, display_name=user.display_name, home_timezone=user.home_timezone)


Confirm = Annotated[
    str,
    Query(
        min_length=1,
        max_length=64,
        description="the caller's user id, repeated: a request without it, or with another id, erases nothing",
    ),
]


@router.delete(
    "",
    response_model=Erasure,
    summary="Erase the caller and everything held about them",
    responses={404: NOT_FOUND, 422: UNPROCESSABLE},
)
def delete_me(principal: PrincipalDep, confirm: Confirm, request: Request, engine: EngineDep, conn: DbDep) -> Erasure:
    """Erases every row of the caller in every schema (samples, marts, insights, scores, devices, profile), their
    API keys (this one included: it answers 401 from now on) and share links (their codes answer 404), their data
    key and their partitions in Dagster, then recomputes the cohort statistics and health scores of the days they
    had data, for everyone left. An audit row without personal data remains. Cannot be undone.

    `confirm` must repeat the caller's user id (`GET /v1/me` shows it): a stray or replayed request without it
    erases nothing (422). The answer comes once the recompute is done (seconds: a dbt build of the days)."""
    from pipeline.erasure.erase import ErasureError, erase_user, requested_by_key

    user_id = user_of(principal)
    if confirm != user_id:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "confirm must repeat the caller's user id (GET /v1/me shows it)"
        )
    prefix = key_prefix(conn, principal.key_id)
    settings: Settings = request.app.state.settings
    try:
        erasure = erase_user(
            engine,
            user_id,
            requested_by=requested_by_key(prefix or "hp_unknown"),
            dagster_storage=dagster_storage_url(settings, engine.url),
            dbt_home=settings.resolved_dagster_home / "dbt",
        )
    except ErasureError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {user_id!r}") from None
    return Erasure(
        erasure_id=erasure.erasure_id,
        rows_removed=erasure.rows_removed,
        data_key_destroyed=erasure.data_key_destroyed,
        dagster_partitions_removed=erasure.dagster.partition_keys if erasure.dagster else 0,
        cohort_days_recomputed=len(erasure.cohort_days),
        score_days_recomputed=erasure.days_rescored,
    )
