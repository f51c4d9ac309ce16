"""The read routes against hand-written marts rows (tests/support/read_api.py): every number in an answer is the
marts row it comes from; another user's key sees none of it; admin keys read any user under /v1/users/{userId}."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from api.ranges import MAX_DAYS
from pipeline.accounts import create_api_key
from pipeline.infra.database import psycopg_connection
from tests.support.helpers import new_user
from tests.support.read_api import ReadWorld
from tests.support.read_api import bearer as auth


def test_summary_holds_the_days_marts_rows_with_goals_sleep_stages_insights_score_and_freshness(
    client: TestClient, world: ReadWorld
) -> None:
    answer = client.get("/v1/me/summary", params={"date": "2024-05-01"}, headers=auth(world.user_key))
    assert answer.status_code == 200
    body = answer.json()
    assert body["date"] == "2024-05-01" and body["userId"] == world.user
    metrics = {m["metric"]: m for m in body["metrics"]}
    assert sorted(metrics) == ["ACTIVE_ENERGY", "HEART_RATE", "SLEEP_ANALYSIS", "STEPS"]
    assert metrics["STEPS"] == {
        "metric": "STEPS",
        "displayName": "Steps",
        "unit": "count",
        "value": 6000.0,
        "count": 10,
        "min": 100.0,
        "max": 1500.0,
        "flaggedCount": 1,
        "goal": 8000.0,  # the user's own goal, not the catalogue's 10,000
        "progress": 0.75,
    }
    assert (metrics["ACTIVE_ENERGY"]["goal"], metrics["ACTIVE_ENERGY"]["progress"]) == (500.0, 0.5)
    assert metrics["HEART_RATE"]["value"] == 70.0 and metrics["HEART_RATE"]["unit"] == "bpm"
    assert metrics["HEART_RATE"]["goal"] is None and metrics["HEART_RATE"]["progress"] is None
    # the night ending 1 May: the won slices inside it (core 90, deep 100, rem 230); the lost deep slice and the nap
    # outside the night are not counted
    assert body["sleep"] == {
        "asleepMinutes": 420.0,
        "nights": 1,
        "stages": [
            {"stage": "core", "minutes": 90.0},
            {"stage": "deep", "minutes": 100.0},
            {"stage": "rem", "minutes": 230.0},
        ],
    }
    assert body["activeInsights"] == 1
    assert body["healthScore"] == {
        "date": "2024-05-01",
        "score": 72.5,
        "components": {"activity": 60.0, "sleep": 80.0, "vitals": 77.5},
        "completeness": 0.9,
        "cohortUsers": 12,
        "computedAt": "2024-05-02T00:05:00Z",
    }
    assert body["freshness"] == {
        "lastLandedAt": "2024-05-02T21:04:00Z",
        "lastComputedAt": "2024-05-02T23:59:00Z",
        "lastDataDate": "2024-05-02",
    }


def test_summary_defaults_to_the_users_local_today(client: TestClient, world: ReadWorld) -> None:
    zone = zoneinfo.ZoneInfo("America/New_York")
    before = dt.datetime.now(zone).date()
    body = client.get("/v1/me/summary", headers=auth(world.other_key)).json()
    after = dt.datetime.now(zone).date()
    assert body["date"] in {before.isoformat(), after.isoformat()}
    assert body["metrics"] == [] and body["sleep"] is None and body["healthScore"] is None


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        (
            "day",
            [
                ("2024-04-30", 3000, 3000, 6, 100, 900, 0, None),
                ("2024-05-01", 6000, 6000, 10, 100, 1500, 1, None),
                ("2024-05-02", 9000, 9000, 12, 200, 2000, 0, None),
            ],
        ),
        # the week of Monday 29 April: the three days; the month of April: one day, May: two
        ("week", [("2024-04-29", 18000, 18000, 28, 100, 2000, 1, 3)]),
        ("month", [("2024-04-01", 3000, 3000, 6, 100, 900, 0, 1), ("2024-05-01", 15000, 15000, 22, 100, 2000, 1, 2)]),
    ],
)
def test_aggregates_are_the_period_marts_rows(
    client: TestClient, world: ReadWorld, period: str, expected: list[tuple[object, ...]]
) -> None:
    answer = client.get(
        "/v1/me/aggregates",
        params={"types": "STEPS", "period": period, "start": "2024-04-30", "end": "2024-05-02"},
        headers=auth(world.user_key),
    )
    assert answer.status_code == 200, answer.text
    series = answer.json()["types"]
    assert list(series) == ["STEPS"] and (series["STEPS"]["unit"], series["STEPS"]["aggregation"]) == ("count", "sum")
    points = [
        (p["periodStart"], p["value"], p["sum"], p["count"], p["min"], p["max"], p["flaggedCount"], p["daysWithData"])
        for p in series["STEPS"]["points"]
    ]
    assert points == expected


def test_hourly_and_averaged_aggregates(client: TestClient, world: ReadWorld) -> None:
    body = client.get(
        "/v1/me/aggregates",
        params={"types": "STEPS,HEART_RATE", "period": "hour", "start": "2024-05-01", "end": "2024-05-01"},
        headers=auth(world.user_key),
    ).json()
    assert [
        (p["periodStart"], p["hourStartUtc"], p["value"], p["count"]) for p in body["types"]["STEPS"]["points"]
    ] == [
        ("2024-05-01T08:00:00", "2024-05-01T06:00:00Z", 2500.0, 4),
        ("2024-05-01T09:00:00", "2024-05-01T07:00:00Z", 3500.0, 6),
    ]
    assert body["types"]["HEART_RATE"]["points"] == []  # no hourly heart rate rows were written
    week = client.get(
        "/v1/me/aggregates",
        params={"types": "HEART_RATE", "period": "week", "start": "2024-05-01", "end": "2024-05-01"},
        headers=auth(world.user_key),
    ).json()["types"]["HEART_RATE"]
    # (700 + 1280) / (10 + 20) readings: the mean of every reading, not of the daily means
    assert week["aggregation"] == "average"
    assert [(p["value"], p["min"], p["max"], p["flaggedCount"]) for p in week["points"]] == [(66.0, 50.0, 120.0, 2)]


@pytest.mark.parametrize("period", list(MAX_DAYS))
def test_ranges_are_bounded_per_period(client: TestClient, world: ReadWorld, period: str) -> None:
    start = dt.date(2020, 1, 1)
    longest = start + dt.timedelta(days=MAX_DAYS[period] - 1)
    params = {"types": "STEPS", "period": period, "start": start.isoformat()}
    ok = client.get("/v1/me/aggregates", params={**params, "end": longest.isoformat()}, headers=auth(world.user_key))
    assert ok.status_code == 200
    over = client.get(
        "/v1/me/aggregates",
        params={**params, "end": (longest + dt.timedelta(days=1)).isoformat()},
        headers=auth(world.user_key),
    )
    assert over.status_code == 422
    assert over.json()["detail"] == (
        f"period {period}: at most {MAX_DAYS[period]:,} days from start to end (both included), "
        f"not {MAX_DAYS[period] + 1:,}"
    )


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"types": "STEPS,FOO", "start": "2024-05-01", "end": "2024-05-02"}, "unknown type(s) 'FOO'"),
        (
            {"types": "STEPS", "start": "2024-05-03", "end": "2024-05-02"},
            "end (2024-05-02) is before start (2024-05-03)",
        ),
        ({"types": "STEPS", "start": "2024-02-30", "end": "2024-05-02"}, "start"),
        ({"types": "STEPS", "start": "2024-05-01", "end": "2024-05-02", "period": "year"}, "period"),
    ],
)
def test_bad_aggregate_requests_are_422_naming_the_fault(
    client: TestClient, world: ReadWorld, params: dict[str, str], names: str
) -> None:
    answer = client.get("/v1/me/aggregates", params=params, headers=auth(world.user_key))
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    if isinstance(detail, str):
        assert detail.startswith(names)
    else:
        assert [error["loc"] for error in detail] == [["query", names]]


def test_insights_by_status(client: TestClient, world: ReadWorld) -> None:
    def ids(status: str | None) -> list[str]:
        params = {"status": status} if status else {}
        return [i["id"] for i in client.get("/v1/me/insights", params=params, headers=auth(world.user_key)).json()]

    assert ids(None) == ids("active") == [str(world.active_insight)]
    assert ids("resolved") == [str(world.resolved_insight)]
    assert ids("all") == [str(world.active_insight), str(world.resolved_insight)]  # newest first
    insight = client.get("/v1/me/insights", headers=auth(world.user_key)).json()[0]
    assert insight["type"] == "step_goal_streak" and insight["data"] == {"days": 3}
    assert (insight["firstDay"], insight["lastDay"], insight["status"]) == ("2024-04-29", "2024-05-01", "active")


def test_acknowledging_is_idempotent_and_only_for_the_owner(client: TestClient, world: ReadWorld) -> None:
    url = f"/v1/me/insights/{world.resolved_insight}/acknowledge"
    first = client.post(url, headers=auth(world.user_key))
    assert first.status_code == 200 and first.json()["acknowledged"] is True
    again = client.post(url, headers=auth(world.user_key))
    assert again.status_code == 200 and again.json()["acknowledgedAt"] == first.json()["acknowledgedAt"]
    # another user's insight, and one that does not exist: 404 alike, and the other's stays unacknowledged
    for insight in (world.other_insight, uuid.uuid4()):
        refused = client.post(f"/v1/me/insights/{insight}/acknowledge", headers=auth(world.user_key))
        assert refused.status_code == 404
    other = client.get("/v1/me/insights", headers=auth(world.other_key)).json()
    assert [(i["id"], i["acknowledged"]) for i in other] == [(str(world.other_insight), False)]
    assert client.post("/v1/me/insights/not-a-uuid/acknowledge", headers=auth(world.user_key)).status_code == 422


def test_health_scores_in_range(client: TestClient, world: ReadWorld) -> None:
    scores = client.get(
        "/v1/me/health-scores", params={"start": "2024-05-02", "end": "2024-05-31"}, headers=auth(world.user_key)
    ).json()
    assert scores == [
        {
            "date": "2024-05-02",
            "score": 81.0,
            "components": {"activity": 90.0, "sleep": None, "vitals": 72.0},
            "completeness": 0.5,
            "cohortUsers": 12,
            "computedAt": "2024-05-03T00:05:00Z",
        }
    ]
    too_long = client.get(
        "/v1/me/health-scores", params={"start": "2023-01-01", "end": "2024-05-31"}, headers=auth(world.user_key)
    )
    assert too_long.status_code == 422


def test_sources_raw_vs_kept(client: TestClient, world: ReadWorld) -> None:
    body = client.get("/v1/me/sources", params={"date": "2024-05-01"}, headers=auth(world.user_key)).json()
    assert body == {
        "date": "2024-05-01",
        "sources": [
            {
                "metric": "STEPS",
                "unit": "count",
                "sourceName": "Watch",
                "deviceClass": "watch",
                "rawTotal": 5000.0,
                "keptTotal": 4800.0,
                "keptShare": 0.8,
            },
            {
                "metric": "STEPS",
                "unit": "count",
                "sourceName": "Phone",
                "deviceClass": "phone",
                "rawTotal": 3000.0,
                "keptTotal": 1200.0,
                "keptShare": 0.2,
            },
        ],
    }


READS = [
    ("/summary", {"date": "2024-05-01"}),
    (
        "/aggregates",
        {"types": "STEPS,HEART_RATE,SLEEP_ANALYSIS", "period": "day", "start": "2024-04-01", "end": "2024-05-31"},
    ),
    ("/aggregates", {"types": "STEPS", "period": "month", "start": "2024-04-01", "end": "2024-05-31"}),
    ("/insights", {"status": "all"}),
    ("/health-scores", {"start": "2024-04-01", "end": "2024-05-31"}),
    ("/sources", {"date": "2024-05-01"}),
]


@pytest.mark.parametrize(("path", "params"), READS)
def test_another_users_key_gets_nothing_of_this_users(
    client: TestClient, world: ReadWorld, path: str, params: dict[str, str]
) -> None:
    mine = client.get("/v1/me" + path, params=params, headers=auth(world.user_key)).json()
    theirs = client.get("/v1/me" + path, params=params, headers=auth(world.other_key))
    assert theirs.status_code == 200
    text = theirs.text
    assert world.user not in text and str(world.active_insight) not in text and str(world.resolved_insight) not in text
    assert mine != theirs.json()
    # the other user's own rows are what it gets: 12,345 steps, its Other source, its insight
    if path == "/summary":
        assert [m["value"] for m in theirs.json()["metrics"]] == [12345.0] and theirs.json()["healthScore"] is None
    if path == "/sources":
        assert [s["sourceName"] for s in theirs.json()["sources"]] == ["Other"]
    if path == "/health-scores":
        assert theirs.json() == []


@pytest.mark.parametrize(("path", "params"), READS)
def test_an_admin_key_reads_any_user_as_the_user_does(
    client: TestClient, world: ReadWorld, path: str, params: dict[str, str]
) -> None:
    own = client.get("/v1/me" + path, params=params, headers=auth(world.user_key))
    as_admin = client.get(f"/v1/users/{world.user}" + path, params=params, headers=auth(world.admin_key))
    assert as_admin.status_code == 200 and as_admin.json() == own.json()
    # a user key may not use the admin routes, not even for its own user; an admin key has no /v1/me data
    for key in (world.user_key, world.other_key):
        refused = client.get(f"/v1/users/{world.user}" + path, params=params, headers=auth(key))
        assert refused.status_code == 403 and refused.json() == {"detail": "this route needs an admin key"}
    assert client.get("/v1/me" + path, params=params, headers=auth(world.admin_key)).status_code == 403
    assert client.get("/v1/users/nobody_here" + path, params=params, headers=auth(world.admin_key)).status_code == 404


def test_admin_keys_cannot_acknowledge_for_a_user(client: TestClient, world: ReadWorld) -> None:
    answer = client.post(
        f"/v1/users/{world.user}/insights/{world.active_insight}/acknowledge", headers=auth(world.admin_key)
    )
    assert answer.status_code in (404, 405)


def test_before_the_marts_are_built_the_reads_answer_no_data(engine: Engine) -> None:
    """A warehouse with migrations only: no dbt marts, no health scores table. Answers are empty, not 500."""
    user = new_user(engine)
    with psycopg_connection(engine) as conn:
        key = create_api_key(conn, user)
    with TestClient(create_app(engine)) as fresh:
        for path, params in READS:
            answer = fresh.get("/v1/me" + path, params=params, headers=auth(key))
            assert answer.status_code == 200, (path, answer.text)
        weeks = fresh.get("/v1/me" + READS[2][0], params=READS[2][1], headers=auth(key)).json()
        assert weeks["types"] == {"STEPS": {"unit": "count", "aggregation": "sum", "points": []}}
        assert fresh.get("/v1/me/health-scores", params=READS[4][1], headers=auth(key)).json() == []


@pytest.mark.parametrize("user_id", ["no%00body", "Zo%C3%AB", "a" * 65, "has%20space"])
def test_an_admin_asking_for_an_impossible_user_id_gets_422(client: TestClient, world: ReadWorld, user_id: str) -> None:
    """app.users takes ids of 1-64 letters, digits and _.@-: the path says so too."""
    answer = client.get(f"/v1/users/{user_id}/summary", headers=auth(world.admin_key))
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["path", "user_id"]


def test_the_metric_catalogue_is_served_to_any_key_and_to_no_one_without(client: TestClient, world: ReadWorld) -> None:
    from pipeline.catalog import METRICS

    answer = client.get("/v1/metrics", headers=auth(world.user_key))
    assert answer.status_code == 200
    body = answer.json()
    assert [m["name"] for m in body] == list(METRICS)
    steps = next(m for m in body if m["name"] == "STEPS")
    assert steps == {
        "name": "STEPS",
        "displayName": METRICS["STEPS"].display_name,
        "unit": "count",
        "ucumUnit": METRICS["STEPS"].ucum_unit,
        "aggregation": "sum",
        "goal": METRICS["STEPS"].goal,
    }
    assert client.get("/v1/metrics").status_code == 401
