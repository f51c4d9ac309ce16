"""The caller's source priority: which device class wins where sources overlap."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from api import audit
from api.auth import CurrentUserDep
from api.deps import DbDep
from api.errors import BAD_REQUEST, KEYED_ROUTE_RESPONSES, NOT_FOUND, UNPROCESSABLE
from api.schemas.source_priority import PriorityIn, PriorityOut
from pipeline.accounts import AccountError, set_source_priority, source_priority
from pipeline.infra.database import Connection

router = APIRouter(prefix="/me/source-priority", tags=["me"], responses={**KEYED_ROUTE_RESPONSES, 404: NOT_FOUND})

_APPLIES = (
    "A change makes the pipeline recompute the caller's days with data (the sensor source_priority_changes, within a "
    "minute or so); until those runs finish, the aggregates still follow the previous order."
)


def _current(conn: Connection, user_id: str) -> PriorityOut:
    try:
        order, custom = source_priority(conn, user_id)
    except AccountError as exc:  # the key's user was deleted since it authenticated
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return PriorityOut(order=list(order), custom=custom)


@router.get("", response_model=PriorityOut, summary="The caller's source priority")
def get_priority(user_id: CurrentUserDep, conn: DbDep) -> PriorityOut:
    audit.note_records(1)
    return _current(conn, user_id)


@router.put(
    "",
    response_model=PriorityOut,
    summary="Set the caller's source priority",
    description=_APPLIES,
    responses={400: BAD_REQUEST, 422: UNPROCESSABLE},
)
def put_priority(body: PriorityIn, user_id: CurrentUserDep, conn: DbDep) -> PriorityOut:
    try:
        set_source_priority(conn, user_id, [c.value for c in body.order])
    except AccountError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    return _current(conn, user_id)


@router.delete("", response_model=PriorityOut, summary="Back to the default priority", description=_APPLIES)
def reset_priority(user_id: CurrentUserDep, conn: DbDep) -> PriorityOut:
    try:
        set_source_priority(conn, user_id, None)
    except AccountError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return _current(conn, user_id)
