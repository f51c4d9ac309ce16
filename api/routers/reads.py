"""The read routes of the dashboards, written once (`reads_router`) and mounted twice: under `/me` for the caller's
own data and under `/users/{user_id}` for any user's, with an admin key. Every answer comes from precomputed tables
(api/queries/); acknowledging an insight is the one write, and only the user's own (`/me`). Every GET answers through
the response cache (`api.cached_reads`): an ETag from the user's data version, 304, kept bytes."""

import datetime as dt
import json
import uuid
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status

from api.cached_reads import CACHED_READ_RESPONSES, IfNoneMatch, Serialized, cached_answer
from api.deps import DbDep
from api.errors import KEYED_ROUTE_RESPONSES, NO_SUCH_INSIGHT, NO_SUCH_USER, NOT_ADMIN, UNPROCESSABLE
from api.etags import Param
from api.metric_names import listed_metric_names
from api.queries import aggregates as aggregate_queries
from api.queries import insights as insight_queries
from api.queries import scores as score_queries
from api.queries import summary as summary_queries
from api.queries.common import Row
from api.ranges import MAX_DAYS, range_problem
from api.schemas.reads import (
    Aggregates,
    Freshness,
    HealthScore,
    Insight,
    InsightStatus,
    MetricOfDay,
    Period,
    ScoreComponents,
    SleepNight,
    SleepStage,
    SourceContribution,
    Sources,
    Summary,
)
from api.subject import ANY_USER_READING, OWN_READING, OwnReadingDep, PendingDependency, PendingReading, Reading
from pipeline import data_version
from pipeline.catalog import METRICS, SLEEP_METRIC, STEPS_METRIC
from pipeline.infra.database import Connection

DayQuery = Annotated[dt.date | None, Query(description="a local date (YYYY-MM-DD); default: the user's local today")]
StartQuery = Annotated[dt.date, Query(description="first local date, included (YYYY-MM-DD)")]
EndQuery = Annotated[dt.date, Query(description="last local date, included (YYYY-MM-DD)")]
TypesQuery = Annotated[
    str,
    Query(
        max_length=1000,
        description=f"metric types, comma-separated: {', '.join(METRICS)}",
        examples=[",".join(list(METRICS)[:2])],
    ),
]


def _unprocessable(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)


def _checked_range(start: dt.date, end: dt.date, max_days: int, what: str) -> None:
    problem = range_problem(start, end, max_days, what)
    if problem is not None:
        raise _unprocessable(problem)


def _metric_types(types: str) -> list[str]:
    try:
        return listed_metric_names(types)
    except ValueError as exc:
        raise _unprocessable(str(exc)) from exc


def _metric_of_day(row: Row, steps_goal: int | None) -> MetricOfDay:
    metric = METRICS.get(row["metric"])
    goal = (steps_goal or metric.goal) if metric and metric.name == STEPS_METRIC else (metric.goal if metric else None)
    return MetricOfDay(
        metric=row["metric"],
        display_name=metric.display_name if metric else row["metric"],
        unit=metric.canonical_unit if metric else "",
        value=row["value"],
        count=row["count"],
        min=row["min"],
        max=row["max"],
        flagged_count=row["flagged_count"],
        goal=goal,
        progress=row["value"] / goal if goal else None,
    )


def _health_score(row: Row) -> HealthScore:
    return HealthScore(
        date=row["local_date"],
        score=row["score"],
        components=ScoreComponents(activity=row["activity"], sleep=row["sleep"], vitals=row["vitals"]),
        completeness=row["completeness"],
        cohort_users=row["cohort_users"],
        computed_at=row["computed_at"],
    )


def _insight(row: Row) -> Insight:
    return Insight(
        id=row["insight_id"],
        type=row["rule"],
        subject=row["subject"],
        severity=row["severity"],
        direction=row["direction"],
        message=row["message"],
        recommendation=row["recommendation"],
        data=row["numbers"],
        first_day=row["first_evaluated_day"],
        last_day=row["last_evaluated_day"],
        status=row["status"],
        resolved_on=row["resolved_on"],
        acknowledged=row["acknowledged_at"] is not None,
        acknowledged_at=row["acknowledged_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _summary(conn: Connection, user_id: str, day: dt.date) -> Summary:
    parts = summary_queries.day_summary(conn, user_id, day)
    rows = parts["metrics"]
    sleep_row = next((row for row in rows if row["metric"] == SLEEP_METRIC), None)
    sleep = None
    if sleep_row is not None:
        sleep = SleepNight(
            asleep_minutes=sleep_row["value"],
            nights=sleep_row["count"],
            stages=[SleepStage(stage=s["stage"], minutes=s["minutes"]) for s in parts["stages"]],
        )
    score = parts["health_score"]
    return Summary(
        user_id=user_id,
        date=day,
        metrics=[_metric_of_day(row, parts["step_goal"]) for row in rows],
        sleep=sleep,
        active_insights=parts["active_insights"],
        health_score=_health_score(score) if score else None,
        freshness=Freshness(
            last_landed_at=parts["last_landed_at"],
            last_computed_at=parts["last_computed_at"],
            last_data_date=parts["last_data_date"],
        ),
    )


def _aggregates(
    conn: Connection, user_id: str, metrics: list[str], period: Period, start: dt.date, end: dt.date
) -> Serialized:
    """The `Aggregates` answer as JSON: its series as the database builds them, inside the envelope."""
    head = json.dumps({"period": period.value, "start": start.isoformat(), "end": end.isoformat()})
    types, points = aggregate_queries.series_json(conn, user_id, metrics, period.value, start, end)
    return Serialized(head[:-1].encode() + b', "types": ' + types + b"}", points)


def _sources(conn: Connection, user_id: str, day: dt.date) -> Sources:
    rows = score_queries.source_contributions(conn, user_id, day)
    return Sources(
        date=day,
        sources=[
            SourceContribution(unit=METRICS[r["metric"]].canonical_unit if r["metric"] in METRICS else "", **r)
            for r in rows
        ],
    )


def add_read_routes(router: APIRouter, prefix: str, subject: PendingDependency, own: bool) -> None:
    """Add the read routes under ``prefix`` to ``router``, over the user that ``subject`` (a dependency) resolves;
    ``own``: the caller's own data, which adds the acknowledgement of insights."""
    responses: dict[int | str, dict[str, Any]] = {**KEYED_ROUTE_RESPONSES, 404: NO_SUCH_USER, 422: UNPROCESSABLE}
    if not own:
        responses[403] = NOT_ADMIN
    reads = {**responses, **CACHED_READ_RESPONSES}
    tags: list[str | Enum] = ["reads" if own else "admin reads"]
    PendingDep = Annotated[PendingReading, Depends(subject)]  # noqa: N806  (a type alias local to the factory)
    whose = "the caller's" if own else "the user's"

    @router.get(
        prefix + "/summary",
        tags=tags,
        responses=reads,
        response_model=Summary,
        summary=f"A day of {whose} data at a glance",
    )
    async def summary(pending: PendingDep, if_none_match: IfNoneMatch = None, date: DayQuery = None) -> Response:
        """Each metric's daily value with its unit (goal and progress where the catalogue or the user sets one),
        the night's sleep by stage, the active insights, the day's health score and when the data last landed and
        was last computed."""
        return await cached_answer(
            pending,
            "summary",
            if_none_match,
            lambda reading: {"date": date or reading.state.today},
            lambda conn, reading: _summary(conn, reading.user_id, date or reading.state.today),
        )

    @router.get(
        prefix + "/aggregates",
        tags=tags,
        responses=reads,
        response_model=Aggregates,
        summary=f"{whose.capitalize()} aggregates by type, period and range",
        description="Ranges are bounded per period (both ends included): "
        + ", ".join(f"{period} {days:,} days" for period, days in MAX_DAYS.items())
        + ". An unknown type, a bad date, an end before the start or a longer range: 422 naming it.",
    )
    async def aggregates(
        pending: PendingDep,
        types: TypesQuery,
        start: StartQuery,
        end: EndQuery,
        period: Annotated[Period, Query()] = Period.DAY,
        if_none_match: IfNoneMatch = None,
    ) -> Response:

        def params(_: Reading) -> dict[str, Param]:  # checked once the key is: an unknown key is a 401 first
            _checked_range(start, end, MAX_DAYS[period.value], f"period {period.value}")
            return {"types": _metric_types(types), "period": period, "start": start, "end": end}

        return await cached_answer(
            pending,
            "aggregates",
            if_none_match,
            params,
            lambda conn, reading: _aggregates(conn, reading.user_id, _metric_types(types), period, start, end),
        )

    @router.get(
        prefix + "/insights",
        tags=tags,
        responses=reads,
        response_model=list[Insight],
        summary=f"{whose.capitalize()} insights",
    )
    async def insights(
        pending: PendingDep,
        status: Annotated[InsightStatus, Query(description="active (default), resolved or all")] = InsightStatus.ACTIVE,
        if_none_match: IfNoneMatch = None,
    ) -> Response:
        """Newest first: by the latest day the insight held, then severity."""
        wanted = None if status is InsightStatus.ALL else status.value
        return await cached_answer(
            pending,
            "insights",
            if_none_match,
            lambda _: {"status": status},
            lambda conn, reading: [
                _insight(row) for row in insight_queries.user_insights(conn, reading.user_id, wanted)
            ],
        )

    if own:

        @router.post(
            prefix + "/insights/{insight_id}/acknowledge",
            response_model=Insight,
            summary="Acknowledge one of the caller's insights",
            tags=tags,
            responses={**responses, 404: NO_SUCH_INSIGHT},
        )
        def acknowledge_insight(reading: OwnReadingDep, conn: DbDep, insight_id: uuid.UUID) -> Insight:
            """Idempotent: acknowledging again changes nothing (the first time stays). Recomputes never reset it."""
            user_id = reading.user_id
            with conn.transaction():
                acknowledged = insight_queries.acknowledge(conn, user_id, insight_id)
                if acknowledged is not None and acknowledged.first_time:
                    data_version.advance(conn, [user_id])  # the user's cached answers and ETags are stale now
            if acknowledged is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no insight {insight_id} of this user")
            return _insight(acknowledged.row)

    @router.get(
        prefix + "/health-scores",
        tags=tags,
        responses=reads,
        response_model=list[HealthScore],
        summary=f"{whose.capitalize()} health scores",
    )
    async def health_scores(
        pending: PendingDep,
        start: StartQuery,
        end: EndQuery,
        if_none_match: IfNoneMatch = None,
    ) -> Response:
        """One per day with a score, oldest first, with its components and completeness; ranges bounded as days'
        aggregates. None while the health score asset has never run."""

        def params(_: Reading) -> dict[str, Param]:  # checked once the key is: an unknown key is a 401 first
            _checked_range(start, end, MAX_DAYS["day"], "health scores")
            return {"start": start, "end": end}

        return await cached_answer(
            pending,
            "health_scores",
            if_none_match,
            params,
            lambda conn, reading: [
                _health_score(row) for row in score_queries.health_scores(conn, reading.user_id, start, end)
            ],
        )

    @router.get(
        prefix + "/sources",
        tags=tags,
        responses=reads,
        response_model=Sources,
        summary=f"Per source, raw vs kept: a day of {whose} data",
    )
    async def sources(pending: PendingDep, if_none_match: IfNoneMatch = None, date: DayQuery = None) -> Response:
        """What each source reported per metric and what deduplication kept of it (why a number is what it is)."""
        return await cached_answer(
            pending,
            "sources",
            if_none_match,
            lambda reading: {"date": date or reading.state.today},
            lambda conn, reading: _sources(conn, reading.user_id, date or reading.state.today),
        )


router = APIRouter()
add_read_routes(router, "/me", OWN_READING, own=True)
add_read_routes(router, "/users/{user_id}", ANY_USER_READING, own=False)
