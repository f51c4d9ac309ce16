"""FHIR R4 reads: the user as a Patient and their daily values as a searchset Bundle of Observations, in the media
type ``application/fhir+json``. Written once and mounted twice, as the other reads (`api.routers.reads`): under
``/me/fhir`` for the caller's own data and under ``/users/{user_id}/fhir`` for an admin key. The resources come from
the pure mapping in `pipeline.fhir`; docs/fhir.md has the mapping.

No ``from __future__ import annotations`` here: FastAPI must see the factory's local ``SubjectDep`` as a dependency,
not as a string it cannot resolve (it would take ``user_id`` for a query parameter)."""

import datetime as dt
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from fastapi.openapi.constants import REF_PREFIX
from fastapi.responses import JSONResponse

from api.cached_reads import CACHED_READ_RESPONSES, FHIR_JSON, IfNoneMatch, cached_answer
from api.errors import KEYED_ROUTE_RESPONSES, NO_SUCH_USER, NOT_ADMIN, UNPROCESSABLE
from api.etags import Param
from api.metric_names import listed_metric_names
from api.queries import fhir as fhir_queries
from api.ranges import MAX_DAYS, range_problem
from api.schemas.fhir import FhirBundle, FhirPatient
from api.subject import ANY_USER_READING, OWN_READING, PendingDependency, PendingReading, Reading
from pipeline.catalog import METRICS
from pipeline.fhir.observations import searchset_bundle
from pipeline.fhir.patient import patient
from pipeline.infra.database import Connection
from pipeline.profiles import get_profile

MAX_OBSERVATION_DAYS = MAX_DAYS["day"]


class FhirJSONResponse(JSONResponse):
    media_type = FHIR_JSON


def _errors_as_json(responses: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """Error answers are ``application/json`` (the app's error handlers write them), but FastAPI documents a route's
    extra responses in the route's own media type: document them by reference to their models' schemas instead
    (every other router registers those models)."""
    documented: dict[int | str, dict[str, Any]] = {}
    for code, response in responses.items():
        model = response.get("model")
        if model is None:
            documented[code] = response
            continue
        content = {"application/json": {"schema": {"$ref": REF_PREFIX + model.__name__}}}
        documented[code] = {**{k: v for k, v in response.items() if k != "model"}, "content": content}
    return documented


def _unprocessable(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)


def _wanted_metrics(types: str | None) -> list[str]:
    """The catalogue's metrics named in ``types`` (comma-separated), all of them when it is left out."""
    if types is None:
        return list(METRICS)
    try:
        return listed_metric_names(types)
    except ValueError as exc:
        raise _unprocessable(f"{exc} (or leave types out for all)") from exc


def add_fhir_routes(router: APIRouter, prefix: str, subject: PendingDependency, own: bool) -> None:
    """Add the FHIR routes under ``prefix`` to ``router``, over the user that ``subject`` (a dependency) resolves."""
    responses: dict[int | str, dict[str, Any]] = {**KEYED_ROUTE_RESPONSES, 404: NO_SUCH_USER, 422: UNPROCESSABLE}
    if not own:
        responses[403] = NOT_ADMIN
    documented = {**_errors_as_json(responses), **CACHED_READ_RESPONSES}
    tags: list[str | Enum] = ["fhir" if own else "admin reads"]
    PendingDep = Annotated[PendingReading, Depends(subject)]  # noqa: N806  (a type alias local to the factory)
    whose = "the caller" if own else "the user"

    @router.get(
        prefix + "/Patient",
        tags=tags,
        responses=documented,
        response_model=FhirPatient,
        response_model_exclude_none=True,
        response_class=FhirJSONResponse,
        summary=f"{whose.capitalize()} as a FHIR R4 Patient",
    )
    async def get_patient(pending: PendingDep, if_none_match: IfNoneMatch = None) -> Response:
        """Identifier (system `urn:healthpipe:user-id`, the user id), name, gender and birth date from the
        profile (`/v1/me/profile`); gender `unknown` and a data-absent-reason `unknown` for what is not given."""

        def compute(conn: Connection, reading: Reading) -> FhirPatient:
            profile = get_profile(conn, reading.user_id)
            if profile is None:  # the key's user was deleted since it authenticated
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {reading.user_id!r}")
            return FhirPatient.model_validate(patient(profile))

        return await cached_answer(pending, "fhir_patient", if_none_match, lambda _: {}, compute)

    @router.get(
        prefix + "/Observation",
        tags=tags,
        responses=documented,
        response_model=FhirBundle,
        response_model_exclude_none=True,
        response_class=FhirJSONResponse,
        summary=f"{whose.capitalize()}'s daily values as a FHIR R4 Bundle of Observations",
        description="A searchset Bundle: one Observation per local day and metric with data (`marts.daily`), LOINC "
        "coded, in UCUM units, category `vital-signs` (R4 vital-signs profile), `activity` or `laboratory`. "
        f"At most {MAX_OBSERVATION_DAYS} days from start to end (both included); an unknown type, a bad date, an "
        "end before the start or a longer range: 422 naming it.",
    )
    async def list_observations(
        pending: PendingDep,
        start: Annotated[dt.date, Query(description="first local date, included (YYYY-MM-DD)")],
        end: Annotated[dt.date, Query(description="last local date, included (YYYY-MM-DD)")],
        types: Annotated[
            str | None,
            Query(max_length=1000, description=f"metric types, comma-separated (default all): {', '.join(METRICS)}"),
        ] = None,
        if_none_match: IfNoneMatch = None,
    ) -> Response:

        def params(_: Reading) -> dict[str, Param]:  # checked once the key is: an unknown key is a 401 first
            metrics = _wanted_metrics(types)
            problem = range_problem(start, end, MAX_OBSERVATION_DAYS, "observations")
            if problem is not None:
                raise _unprocessable(problem)
            return {"types": metrics, "start": start, "end": end}

        def compute(conn: Connection, reading: Reading) -> FhirBundle:
            rows = fhir_queries.daily_values(conn, reading.user_id, _wanted_metrics(types), start, end)
            return FhirBundle.model_validate(searchset_bundle(reading.user_id, rows))

        return await cached_answer(pending, "fhir_observations", if_none_match, params, compute)


router = APIRouter()
add_fhir_routes(router, "/me/fhir", OWN_READING, own=True)
add_fhir_routes(router, "/users/{user_id}/fhir", ANY_USER_READING, own=False)
