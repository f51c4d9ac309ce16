"""Share links on the read API's warehouse (tests/support/read_api.py): the link shows exactly the marts.daily rows of
the shared types and dates and nothing of the owner; only the owner creates, lists and revokes (an admin key lists);
an unknown, expired or revoked code answers one and the same 404; the code is stored hashed and never logged."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
import uuid
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.access_log import redacted_path
from api.main import create_app
from api.ranges import MAX_DAYS
from pipeline import data_version
from pipeline.accounts import create_api_key
from pipeline.infra.database import psycopg_connection
from tests.support.helpers import new_user
from tests.support.read_api import ReadWorld
from tests.support.read_api import bearer as auth
from tests.support.served import served

SHARED_TYPES = ["HEART_RATE", "STEPS"]  # of the user's rows (read_api.DAILY): no ACTIVE_ENERGY, no SLEEP_ANALYSIS
START, END = "2024-05-01", "2024-05-02"  # leaves out 2024-04-30's steps


def create(client: TestClient, key: str, **changes: Any) -> httpx.Response:
    body = {"recipient": "Dr. Jansen", "types": SHARED_TYPES, "start": START, "end": END, **changes}
    return client.post("/v1/me/shares", json=body, headers=auth(key))


def shared(client: TestClient, code: str) -> httpx.Response:
    return client.get(f"/v1/shared/{code}")


def share_row(world: ReadWorld, share_id: str) -> dict[str, Any]:
    with psycopg_connection(world.engine) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT to_jsonb(s) - 'code_hash', code_hash FROM app.shares s WHERE share_id = %s", (share_id,))
        found = cursor.fetchone()
    assert found is not None
    row, code_hash = found
    return {**row, "code_hash": bytes(code_hash)}


def test_creating_answers_the_share_with_its_code_once_and_stores_only_the_codes_hash(
    client: TestClient, world: ReadWorld
) -> None:
    answer = create(client, world.user_key, expiresInDays=7)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    code = body["code"]
    assert len(code) == 32  # token_urlsafe(24): 192 random bits
    # the link a person opens is the dashboard's page (code in the fragment); the JSON path comes beside it
    assert (body["url"], body["apiUrl"]) == (f"/#/shared/{code}", f"/v1/shared/{code}")
    assert client.get(body["apiUrl"]).status_code == 200
    page = client.get(body["url"].split("#")[0])
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert (body["recipient"], body["types"], body["start"], body["end"]) == ("Dr. Jansen", SHARED_TYPES, START, END)
    assert (body["status"], body["revokedAt"]) == ("active", None)
    lifetime = dt.datetime.fromisoformat(body["expiresAt"]) - dt.datetime.fromisoformat(body["createdAt"])
    assert lifetime == dt.timedelta(days=7)

    row = share_row(world, body["id"])
    assert row["code_hash"] == hashlib.sha256(code.encode()).digest()
    assert code not in str(row) and code.encode() not in row["code_hash"]
    assert (row["user_id"], row["metrics"], row["start_date"], row["end_date"]) == (
        world.user,
        SHARED_TYPES,
        START,
        END,
    )
    # the code is never shown again: not in the list
    listed = client.get("/v1/me/shares", headers=auth(world.user_key))
    assert code not in listed.text and body["id"] in listed.text
    assert create(client, world.user_key).json()["code"] != code


def test_the_link_shows_the_marts_daily_rows_of_the_shared_types_and_dates_and_nothing_of_the_owner(
    client: TestClient, world: ReadWorld
) -> None:
    code = create(client, world.user_key, recipient="dr.jansen@example.org").json()["code"]
    answer = shared(client, code)  # no key
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert set(body) == {"period", "start", "end", "expiresAt", "types"}
    assert (body["period"], body["start"], body["end"]) == ("day", START, END)
    assert list(body["types"]) == SHARED_TYPES  # the owner's order; ACTIVE_ENERGY and SLEEP of those days left out

    with psycopg_connection(world.engine) as conn, conn.cursor() as cursor:
        cursor.execute(
            """SELECT metric, local_date::text, value, sum, count, min, max, flagged_count FROM marts.daily
               WHERE user_id = %s AND metric = ANY(%s) AND local_date BETWEEN %s AND %s
               ORDER BY metric, local_date""",
            (world.user, SHARED_TYPES, START, END),
        )
        marts_rows = cursor.fetchall()
    shown = [
        (metric, p["periodStart"], p["value"], p["sum"], p["count"], p["min"], p["max"], p["flaggedCount"])
        for metric, series in body["types"].items()
        for p in series["points"]
    ]
    assert sorted(shown) == sorted(marts_rows)
    # the hand-written rows (read_api.DAILY): heart rate 70 and 64 bpm, steps 6,000 and 9,000 (not 30 April's 3,000)
    assert shown == [
        ("HEART_RATE", "2024-05-01", 70.0, 700.0, 10, 55.0, 90.0, 0),
        ("HEART_RATE", "2024-05-02", 64.0, 1280.0, 20, 50.0, 120.0, 2),
        ("STEPS", "2024-05-01", 6000.0, 6000.0, 10, 100.0, 1500.0, 1),
        ("STEPS", "2024-05-02", 9000.0, 9000.0, 12, 200.0, 2000.0, 0),
    ]
    assert {name: (s["unit"], s["aggregation"]) for name, s in body["types"].items()} == {
        "HEART_RATE": ("bpm", "average"),
        "STEPS": ("count", "sum"),
    }
    # the same points as the owner's own aggregates answer
    own = client.get(
        "/v1/me/aggregates",
        params={"types": ",".join(SHARED_TYPES), "period": "day", "start": START, "end": END},
        headers=auth(world.user_key),
    ).json()
    assert body["types"] == own["types"]
    for private in (world.user, "dr.jansen@example.org", "Amsterdam"):
        assert private not in answer.text


def test_an_unknown_an_expired_and_a_revoked_code_answer_the_same_404(client: TestClient, world: ReadWorld) -> None:
    expiring = create(client, world.user_key).json()
    revoked = create(client, world.user_key).json()
    assert shared(client, expiring["code"]).status_code == shared(client, revoked["code"]).status_code == 200
    with psycopg_connection(world.engine) as conn:
        conn.execute(
            "UPDATE app.shares SET expires_at = now() - interval '1 second' WHERE share_id = %s", (expiring["id"],)
        )
    assert client.delete(f"/v1/me/shares/{revoked['id']}", headers=auth(world.user_key)).status_code == 204

    answers = [
        shared(client, code)
        for code in (
            expiring["code"],
            revoked["code"],
            "A" * 32,  # a code's shape, no share's
            revoked["code"][:-1],  # not a code's shape
            "x" * 300,
        )
    ]
    assert {(a.status_code, a.text, a.headers.get("cache-control")) for a in answers} == {
        (404, '{"detail":"no such share link: it may have expired or been revoked"}', "no-store")
    }
    statuses = {s["id"]: s["status"] for s in client.get("/v1/me/shares", headers=auth(world.user_key)).json()}
    assert (statuses[expiring["id"]], statuses[revoked["id"]]) == ("expired", "revoked")


def test_revoking_is_the_owners_alone_and_idempotent(client: TestClient, world: ReadWorld) -> None:
    share = create(client, world.user_key).json()
    url = f"/v1/me/shares/{share['id']}"
    # another user's key, and an id no share has: the same 404; the link still works
    for key, share_id in ((world.other_key, share["id"]), (world.user_key, str(uuid.uuid4()))):
        refused = client.delete(f"/v1/me/shares/{share_id}", headers=auth(key))
        assert (refused.status_code, refused.json()) == (404, {"detail": f"no share {share_id} of this user"})
    assert shared(client, share["code"]).status_code == 200
    # an admin key revokes nothing: shares are revoked by their owner, under /v1/me only
    assert client.delete(url, headers=auth(world.admin_key)).status_code == 403
    assert client.delete(f"/v1/users/{world.user}/shares/{share['id']}", headers=auth(world.admin_key)).status_code in (
        404,
        405,
    )
    assert client.delete(url, headers=auth(world.user_key)).status_code == 204
    first = share_row(world, share["id"])["revoked_at"]
    again = client.delete(url, headers=auth(world.user_key))
    assert (again.status_code, again.content) == (204, b"")
    assert share_row(world, share["id"])["revoked_at"] == first  # the first revocation's time stays
    assert client.delete("/v1/me/shares/not-a-uuid", headers=auth(world.user_key)).status_code == 422


def test_each_user_lists_only_their_own_shares_and_an_admin_key_lists_any_users(
    client: TestClient, world: ReadWorld
) -> None:
    owner = new_user(world.engine, "Europe/Amsterdam", prefix="sharer")
    with psycopg_connection(world.engine) as conn:
        key = create_api_key(conn, owner)
    assert client.get("/v1/me/shares", headers=auth(key)).json() == []
    first = create(client, key, recipient="first", types=["STEPS"]).json()
    second = create(client, key, recipient="second", types=["WEIGHT", "STEPS", "WEIGHT"]).json()
    assert second["types"] == ["WEIGHT", "STEPS"]  # each once, in the order given
    client.delete(f"/v1/me/shares/{first['id']}", headers=auth(key))

    listed = client.get("/v1/me/shares", headers=auth(key)).json()
    assert [(s["id"], s["recipient"], s["status"]) for s in listed] == [
        (second["id"], "second", "active"),  # newest first
        (first["id"], "first", "revoked"),
    ]
    assert all(set(s) == set(second) - {"code", "url", "apiUrl"} for s in listed)
    # the other users see none of them; an admin key sees the same list; a user key may not use the admin route
    for other in (world.user_key, world.other_key):
        theirs = client.get("/v1/me/shares", headers=auth(other))
        assert theirs.status_code == 200 and first["id"] not in theirs.text and second["id"] not in theirs.text
    assert client.get(f"/v1/users/{owner}/shares", headers=auth(world.admin_key)).json() == listed
    for refused in (key, world.user_key):
        answer = client.get(f"/v1/users/{owner}/shares", headers=auth(refused))
        assert (answer.status_code, answer.json()) == (403, {"detail": "this route needs an admin key"})
    assert client.get("/v1/users/nobody_here/shares", headers=auth(world.admin_key)).status_code == 404
    assert client.get("/v1/me/shares").status_code == 401
    assert client.post("/v1/me/shares", json={}).status_code == 401


def test_every_share_write_advances_the_owners_data_version(client: TestClient, world: ReadWorld) -> None:
    owner = new_user(world.engine, prefix="versioned")
    with psycopg_connection(world.engine) as conn:
        key = create_api_key(conn, owner)
        assert data_version.current(conn, owner) == 0
    share = create(client, key).json()
    with psycopg_connection(world.engine) as conn:
        assert data_version.current(conn, owner) == 1
    client.delete(f"/v1/me/shares/{share['id']}", headers=auth(key))
    with psycopg_connection(world.engine) as conn:
        assert data_version.current(conn, owner) == 2
    client.delete(f"/v1/me/shares/{share['id']}", headers=auth(key))  # already revoked: no change, no new version
    client.get("/v1/me/shares", headers=auth(key))
    shared(client, share["code"])
    with psycopg_connection(world.engine) as conn:
        assert data_version.current(conn, owner) == 2


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"types": ["STEPS", "FOO"]}, "types", "unknown type(s) 'FOO'; known: STEPS, DISTANCE,"),
        ({"types": []}, "types", "at least 1 item"),
        ({"start": "2024-05-03", "end": "2024-05-02"}, None, "end (2024-05-02) is before start (2024-05-03)"),
        (
            {"start": "2023-01-01", "end": "2024-01-06"},
            None,
            f"a share: at most {MAX_DAYS['day']} days from start to end (both included), not 371",
        ),
        ({"start": "2024-02-30"}, "start", "date"),
        ({"expiresInDays": 0}, "expiresInDays", "greater than or equal to 1"),
        ({"expiresInDays": 91}, "expiresInDays", "less than or equal to 90"),
        ({"recipient": ""}, "recipient", "at least 1 character"),
        ({"recipient": "a\x00b"}, "recipient", "control characters"),
    ],
)
def test_a_bad_share_is_422_naming_the_fault(
    client: TestClient, world: ReadWorld, changes: dict[str, object], field: str | None, says: str
) -> None:
    answer = create(client, world.user_key, **changes)
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    if field is None:
        assert detail == says
    else:
        assert [error["loc"][-1] for error in detail] == [field]
        assert says in detail[0]["msg"]


def test_the_longest_share_and_the_longest_expiry_are_accepted(client: TestClient, world: ReadWorld) -> None:
    start = dt.date(2023, 1, 1)
    end = start + dt.timedelta(days=MAX_DAYS["day"] - 1)
    answer = create(client, world.user_key, start=start.isoformat(), end=end.isoformat(), expiresInDays=90)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    lifetime = dt.datetime.fromisoformat(body["expiresAt"]) - dt.datetime.fromisoformat(body["createdAt"])
    assert lifetime == dt.timedelta(days=90)
    points = shared(client, body["code"]).json()["types"]["STEPS"]["points"]
    assert [p["periodStart"] for p in points] == []  # the user's steps are from 2024-04-30 on, after this range


def test_the_default_expiry_is_30_days(client: TestClient, world: ReadWorld) -> None:
    body = create(client, world.user_key).json()
    lifetime = dt.datetime.fromisoformat(body["expiresAt"]) - dt.datetime.fromisoformat(body["createdAt"])
    assert lifetime == dt.timedelta(days=30)


def test_access_log_paths_drop_the_query_string_and_the_share_code() -> None:
    assert redacted_path("/v1/shared/abcDEF_-123?x=1") == "/v1/shared/<redacted>"
    assert redacted_path("/v1/shared/abc/def/") == "/v1/shared/<redacted>"
    assert redacted_path("/v1/me/shares?api_key=secret") == "/v1/me/shares"
    assert redacted_path("/v1/me/summary") == "/v1/me/summary"
    assert redacted_path("/v1/users/anna/fhir/Patient?x=1") == "/v1/users/<redacted>/fhir/Patient"


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_the_code_never_reaches_the_access_log(world: ReadWorld, capfd: pytest.CaptureFixture[str]) -> None:
    collected = Lines()
    access = logging.getLogger("uvicorn.access")
    with served(create_app(world.engine), log_level="info") as port:
        access.addHandler(collected)  # after uvicorn configured its loggers
        try:
            base = f"http://127.0.0.1:{port}"
            code = httpx.post(
                f"{base}/v1/me/shares",
                json={"recipient": "r", "types": ["STEPS"], "start": START, "end": END},
                headers=auth(world.user_key),
            ).json()["code"]
            assert httpx.get(f"{base}/v1/shared/{code}").status_code == 200
            assert httpx.get(f"{base}/v1/shared/{code}/").status_code in (307, 404)  # a trailing slash
            deadline = time.monotonic() + 10  # the access line is written after the answer is sent
            while len(collected.records) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            access.removeHandler(collected)
    lines = [record.getMessage() for record in collected.records]
    assert len(lines) >= 3 and sum('"GET /v1/shared/<redacted> HTTP/1.1" 200' in line for line in lines) == 1
    assert all(code not in line for line in lines)
    assert code not in "\n".join(capfd.readouterr())
