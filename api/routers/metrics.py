"""The metric catalogue (pipeline/catalog.py): the type names every `types=` parameter and share accepts, with their
units and daily aggregation, so a client offers the types the API knows instead of a copy of the list."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import PrincipalDep
from api.errors import KEYED_ROUTE_RESPONSES
from api.schemas.metrics import MetricInfo
from pipeline.catalog import METRICS

router = APIRouter(prefix="/metrics", tags=["metrics"], responses=KEYED_ROUTE_RESPONSES)

CATALOGUE = [
    MetricInfo(
        name=metric.name,
        display_name=metric.display_name,
        unit=metric.canonical_unit,
        ucum_unit=metric.ucum_unit,
        aggregation=metric.strategy.value,
        goal=metric.goal,
    )
    for metric in METRICS.values()
]


@router.get("", response_model=list[MetricInfo], summary="The metric types, their units and daily aggregation")
def list_metrics(_: PrincipalDep) -> list[MetricInfo]:
    """Any key (user or admin). The catalogue's order; `goal` is the catalogue's daily goal (a user's own step goal
    shows in their summary)."""
    return CATALOGUE
