"""The caller's devices and device sync."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from api.schemas.base import CamelModel, DisplayText
from pipeline.devices import SEED_DEVICE_WORDS, DeviceClass, device_class_named
from pipeline.ingest.device_sync import MAX_SAMPLES_PER_REQUEST


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
    name: DisplayText = Field(min_length=1, max_length=200)


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
    index: int = Field(description="the sample's position in the request's samples")
    sample: str = Field(description="the sample's JSON text as sent, cut after 200 characters (the cut is marked)")
    error: str


class SyncResponse(CamelModel):
    batch_id: int
    synced: int
    duplicates: int
    errors: int
    error_details: list[SyncError] | None = None
