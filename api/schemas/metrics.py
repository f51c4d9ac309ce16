"""The metric catalogue as the API shows it."""

from __future__ import annotations

from api.schemas.base import CamelModel


class MetricInfo(CamelModel):
    name: str
    display_name: str
    unit: str
    ucum_unit: str
    aggregation: str
    goal: float | None
