"""The caller's source priority."""

from __future__ import annotations

from pydantic import Field

from api.schemas.base import CamelModel
from pipeline.devices import DeviceClass


class PriorityIn(CamelModel):
    order: list[DeviceClass] = Field(
        min_length=1, description="device classes, highest first; those left out follow in the default order"
    )


class PriorityOut(CamelModel):
    order: list[DeviceClass] = Field(description="the effective order, highest first, every class")
    custom: bool = Field(description="whether this is the caller's own order rather than the default")
