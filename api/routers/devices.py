"""The caller's devices and device sync."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Request, Response, status
from fastapi.exceptions import RequestValidationError

from api import audit
from api.auth import CurrentUserDep
from api.deps import DbDep
from api.errors import BAD_REQUEST, KEYED_ROUTE_RESPONSES, NOT_FOUND, TOO_LARGE, UNPROCESSABLE
from api.limits import sample_limits
from api.schemas.devices import DeviceIn, DeviceOut, SyncRequest, SyncResponse
from pipeline import accounts
from pipeline.ingest.device_sync import (
    MAX_SAMPLES_PER_REQUEST,
    DeviceNotFoundError,
    IdempotencyConflictError,
    RequestHash,
    sync_samples,
)
from pipeline.ingest.sample_checks import SampleLimits
from pipeline.ingest.sync_body import SyncBody, SyncBodyError, parse_sync_body

router = APIRouter(prefix="/me/devices", tags=["devices"], responses=KEYED_ROUTE_RESPONSES)
DeviceId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="the device's id, chosen by the app")]


@router.get("", response_model=list[DeviceOut], summary="The caller's devices")
def list_devices(user_id: CurrentUserDep, conn: DbDep) -> list[DeviceOut]:
    devices = accounts.list_devices(conn, user_id)
    audit.note_records(len(devices))
    return [DeviceOut.model_validate(device, from_attributes=True) for device in devices]


@router.put(
    "/{device_id}",
    response_model=DeviceOut,
    summary="Register or rename a device",
    responses={201: {"model": DeviceOut, "description": "Registered"}, 400: BAD_REQUEST, 422: UNPROCESSABLE},
)
def put_device(
    device_id: DeviceId, body: DeviceIn, user_id: CurrentUserDep, conn: DbDep, response: Response
) -> DeviceOut:
    try:
        created = accounts.register_device(conn, user_id, device_id, body.device_class.value, body.name)
    except accounts.AccountError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    stored = accounts.get_device(conn, user_id, device_id)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return DeviceOut(
        device_id=device_id,
        device_class=body.device_class,
        name=body.name,
        last_sync_at=stored.last_sync_at if stored else None,
    )


async def raw_body(request: Request) -> bytes:
    """The request body as sent (size-limited by `api.limits`): device sync keeps each sample's own text."""
    return await request.body()


def _sync_body(body: bytes, hasher: RequestHash) -> SyncBody:
    try:
        return parse_sync_body(body, MAX_SAMPLES_PER_REQUEST, hasher)
    except SyncBodyError as exc:
        raise RequestValidationError([{"type": "sync_body", "loc": ("body",), "msg": str(exc)}]) from exc


@router.post(
    "/{device_id}/sync",
    response_model=SyncResponse,
    response_model_exclude_none=True,
    summary="Land a batch of samples from one of the caller's devices, idempotently",
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": SyncRequest.model_json_schema()}}}
    },
    responses={400: BAD_REQUEST, 404: NOT_FOUND, 413: TOO_LARGE, 422: UNPROCESSABLE},
)
def sync_device(
    device_id: DeviceId,
    body: Annotated[bytes, Depends(raw_body)],
    limits: Annotated[SampleLimits, Depends(sample_limits)],
    user_id: CurrentUserDep,
    conn: DbDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    x_idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> SyncResponse:
    """Lands the samples in the raw layer; the pipeline picks them up. A retry with the same idempotency key (the
    `Idempotency-Key` header, or a hash of the body when absent) returns the first response and lands nothing.
    A sample that cannot land is an error of its own (in `errorDetails`, its text cut short) and is kept in
    quarantine as sent; the others land."""
    hasher = RequestHash(device_id)  # hashed as it is read: the samples are decoded once for it
    samples = _sync_body(body, hasher)  # here, not in the dependency: decoding is CPU work, off the event loop
    key = idempotency_key or x_idempotency_key
    try:
        outcome = sync_samples(conn, user_id, device_id, samples, key, limits, hasher.hexdigest(samples))
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
