"""The caller's devices and device sync."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Path, Response, status
from pydantic import BeforeValidator, Field
from sqlalchemy import text

from api.auth import CurrentUserDep
from api.deps import ConnectionDep, EngineDep
from api.routers.me import CamelModel
from pipeline.accounts import AccountError, register_device
from pipeline.devices import SEED_DEVICE_WORDS, DeviceClass, device_class_named
from pipeline.infra.database import psycopg_connection
from pipeline.ingest.device_sync import (
    MAX_SAMPLES_PER_REQUEST,
    DeviceNotFoundError,
    IdempotencyConflictError,
    sync_samples,
)

router = APIRouter(prefix="/v1/me/devices", tags=["devices"])
DeviceId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="the device's id, chosen by the app")]


def _named_class(value: object) -> object:
    """The seed's device words (apple_watch, iphone, ...) name classes too; anything else is left to be refused."""
    named = device_class_named(value) if isinstance(value, str) else None
    return named if named is not None else value


class DeviceIn(CamelModel):
    device_class: Annotated[
        DeviceClass,
        BeforeValidator(_named_class),
        Field(description=f"a device class, or one of the seed's words: {', '.join(SEED_DEVICE_WORDS)}"),
    ]
    name: str = Field(min_length=1, max_length=200)


class DeviceOut(CamelModel):
    device_id: str
    device_class: DeviceClass
    name: str
    last_sync_at: datetime | None


class SyncRequest(CamelModel):
    samples: list[Any] = Field(
        max_length=MAX_SAMPLES_PER_REQUEST,
        description="HealthSample objects: type, value, unit, startDate, endDate (ISO 8601 with offset; a non-zero "
        "offset is the sample's zone, Z/+00:00 fall back to the user's zone), sourceDevice? (the seed's words "
        "apple_watch, iphone, ... name its device class; otherwise the device's class), sourceApp?, deviceClass?, "
        "metadata?, stage? (sleep), timezone? (IANA name, wins over the offset)",
    )


class SyncError(CamelModel):
    index: int
    sample: Any
    error: str


class SyncResponse(CamelModel):
    batch_id: int
    synced: int
    duplicates: int
    errors: int
    error_details: list[SyncError] | None = None


@router.get("", response_model=list[DeviceOut], summary="The caller's devices")
def list_devices(user_id: CurrentUserDep, conn: ConnectionDep) -> list[DeviceOut]:
    rows = conn.execute(
        text("SELECT device_id, device_class, name, last_sync_at FROM app.devices WHERE user_id = :u ORDER BY 1"),
        {"u": user_id},
    )
    return [DeviceOut.model_validate(dict(row._mapping)) for row in rows]


@router.put("/{device_id}", response_model=DeviceOut, summary="Register or rename a device")
def put_device(
    device_id: DeviceId, body: DeviceIn, user_id: CurrentUserDep, engine: EngineDep, response: Response
) -> DeviceOut:
    with psycopg_connection(engine) as conn:
        try:
            created = register_device(conn, user_id, device_id, body.device_class.value, body.name)
        except AccountError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
        row = conn.execute(
            "SELECT last_sync_at FROM app.devices WHERE user_id = %s AND device_id = %s", (user_id, device_id)
        ).fetchone()
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return DeviceOut(
        device_id=device_id, device_class=body.device_class, name=body.name, last_sync_at=row[0] if row else None
    )


@router.post(
    "/{device_id}/sync",
    response_model=SyncResponse,
    response_model_exclude_none=True,
    summary="Land a batch of samples from one of the caller's devices, idempotently",
)
def sync_device(
    device_id: DeviceId,
    body: SyncRequest,
    user_id: CurrentUserDep,
    engine: EngineDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    x_idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> SyncResponse:
    """Lands the samples in the raw layer; the pipeline picks them up. A retry with the same idempotency key (the
    `Idempotency-Key` header, or a hash of the body when absent) returns the first response and lands nothing."""
    with psycopg_connection(engine) as conn:
        try:
            outcome = sync_samples(conn, user_id, device_id, body.samples, idempotency_key or x_idempotency_key)
        except DeviceNotFoundError as exc:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"no device {device_id!r}: register it with PUT /v1/me/devices/{device_id}"
            ) from exc
        except IdempotencyConflictError as exc:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                "this idempotency key was already used with a different request body",
            ) from exc
    if outcome.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return SyncResponse.model_validate(outcome.response)
