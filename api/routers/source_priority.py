"""The caller's source priority: which device class wins where sources overlap."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from pydantic import Field

from api.auth import CurrentUserDep
from api.deps import EngineDep
from api.routers.me import CamelModel
from pipeline.accounts import AccountError, set_source_priority, source_priority
from pipeline.devices import DeviceClass
from pipeline.infra.database import psycopg_connection

router = APIRouter(prefix="/v1/me/source-priority", tags=["me"])

_APPLIES = (
    "A change makes the pipeline recompute the caller's days with data (the sensor source_priority_changes, within a "
    "minute or so); until those runs finish, the aggregates still follow the previous order."
)


class PriorityIn(CamelModel):
    order: list[DeviceClass] = Field(
        min_length=1, description="device classes, highest first; those left out follow in the default order"
    )


class PriorityOut(CamelModel):
    order: list[DeviceClass] = Field(description="the effective order, highest first, every class")
    custom: bool = Field(description="whether this is the caller's own order rather than the default")


def _current(engine: EngineDep, user_id: str) -> PriorityOut:
    with psycopg_connection(engine) as conn:
        try:
            order, custom = source_priority(conn, user_id)
        except AccountError as exc:  # the key's user was deleted since it authenticated
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return PriorityOut(order=list(order), custom=custom)


@router.get("", response_model=PriorityOut, summary="The caller's source priority")
def get_priority(user_id: CurrentUserDep, engine: EngineDep) -> PriorityOut:
    return _current(engine, user_id)


@router.put("", response_model=PriorityOut, summary="Set the caller's source priority", description=_APPLIES)
def put_priority(body: PriorityIn, user_id: CurrentUserDep, engine: EngineDep) -> PriorityOut:
    with psycopg_connection(engine) as conn:
        try:
            set_source_priority(conn, user_id, [c.value for c in body.order])
        except AccountError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    return _current(engine, user_id)


@router.delete("", response_model=PriorityOut, summary="Back to the default priority", description=_APPLIES)
def reset_priority(user_id: CurrentUserDep, engine: EngineDep) -> PriorityOut:
    with psycopg_connection(engine) as conn:
        try:
            set_source_priority(conn, user_id, None)
        except AccountError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return _current(engine, user_id)
