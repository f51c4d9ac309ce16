"""The FHIR R4 export against the read API's hand-written warehouse (tests/support/read_api.py): the Patient and
every Observation of a Bundle parse with the fhir.resources R4B models, vital signs meet the R4 vital-signs profile's
invariants vs-1 to vs-3, codes and units are the catalogue's, values are the marts.daily rows, and another user's key
reaches none of it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from sqlalchemy.engine import URL

from pipeline.catalog import METRICS, ObservationCategory
from pipeline.infra.database import psycopg_connection
from tests.support.read_api import ReadWorld, build_read_world
from tests.support.read_api import bearer as auth

FHIR_JSON = "application/fhir+json"
UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
VITAL_SIGNS_PROFILE = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
DATA_ABSENT = {"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}
# Beside the world's rows (steps, heart rate, energy, sleep): vital signs and a glucose reading on 1 May, and a day
# (3 May) the user spent in Tokyo by their zone history.
EXTRA_DAILY = [
    ("2024-05-01", "RESTING_HEART_RATE", 58.0, 1, 0),
    ("2024-05-01", "OXYGEN_SATURATION", 97.5, 4, 0),
    ("2024-05-01", "WEIGHT", 71.3, 1, 1),
    ("2024-05-01", "BODY_FAT", 21.4, 1, 0),
    ("2024-05-01", "BLOOD_GLUCOSE", 104.0, 3, 0),
    ("2024-05-03", "STEPS", 4321.0, 5, 0),
]


@pytest.fixture(scope="module")
def world(make_database: Callable[[], URL], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReadWorld]:
    built = build_read_world(make_database(), tmp_path_factory.mktemp("dbt"))
    with psycopg_connection(built.engine) as conn:
        for day, metric, value, count, flagged in EXTRA_DAILY:
            conn.execute(
                """INSERT INTO marts.daily (user_id, local_date, metric, value, sum, count, min, max, flagged_count)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                (built.user, day, metric, value, value * count, count, value, value, flagged),
            )
        conn.execute(
            "INSERT INTO app.user_timezones (user_id, valid_from, timezone) VALUES (%s, '2024-05-02 22:00+00', %s)",
            (built.user, "Asia/Tokyo"),
        )
    yield built
    built.engine.dispose()


def daily_rows(world: ReadWorld, user: str, start: str, end: str) -> dict[tuple[str, str], tuple[float, int, int]]:
    """(date, metric) -> (value, count, flagged_count) of the user's marts.daily rows in the range."""
    with psycopg_connection(world.engine) as conn:
        rows = conn.execute(
            """SELECT local_date, metric, value, count, flagged_count FROM marts.daily
               WHERE user_id = %s AND local_date BETWEEN %s AND %s""",
            (user, start, end),
        ).fetchall()
    return {(str(day), str(metric)): (float(v), int(c), int(f)) for day, metric, v, c, f in rows}  # type: ignore[call-overload]


def day_precise(date_time: str) -> bool:
    """vs-1's test of a dateTime: ``($this as dateTime).toString().length() >= 8`` (at least YYYY-MM-DD: a year or
    a year and month alone are shorter)."""
    return len(date_time) >= 8


def vital_signs_problems(observation: dict[str, Any]) -> list[str]:
    """What breaks the R4 vital-signs profile (http://hl7.org/fhir/StructureDefinition/vitalsigns) in one
    Observation: its invariants and the elements it makes mandatory.
    - vs-1 (on effective[x]): ``($this as dateTime).toString().length() >= 8``;
    - vs-2 (on Observation): ``(component.empty() and hasMember.empty()) implies (dataAbsentReason.exists() or
      value.exists())``;
    - vs-3 (on each component): ``value.exists() or dataAbsentReason.exists()``."""
    problems = []
    effective = {key: value for key, value in observation.items() if key.startswith("effective")}
    if len(effective) != 1:
        problems.append("effective[x] is required (1..1)")
    if "effectiveDateTime" in effective and not day_precise(effective["effectiveDateTime"]):
        problems.append("vs-1: effectiveDateTime not precise to the day")
    period = effective.get("effectivePeriod", {})
    if any(not day_precise(period[bound]) for bound in ("start", "end") if bound in period) or (
        "effectivePeriod" in effective and "start" not in period
    ):
        problems.append("vs-1: the effective period is not precise to the day")

    def has_value(element: dict[str, Any]) -> bool:
        return any(key.startswith("value") for key in element)

    leaf = not observation.get("component") and not observation.get("hasMember")
    if leaf and not (has_value(observation) or "dataAbsentReason" in observation):
        problems.append("vs-2: no value and no dataAbsentReason")
    for at, component in enumerate(observation.get("component", [])):
        if not (has_value(component) or "dataAbsentReason" in component):
            problems.append(f"vs-3: component {at} has no value and no dataAbsentReason")
    if observation.get("status") not in ("registered", "preliminary", "final", "amended"):
        problems.append("status")
    codings = [c for category in observation.get("category", []) for c in category.get("coding", [])]
    if {"system": CATEGORY_SYSTEM, "code": "vital-signs"} not in [
        {"system": c.get("system"), "code": c.get("code")} for c in codings
    ]:
        problems.append("no vital-signs category")
    if not observation.get("code", {}).get("coding"):
        problems.append("code")
    if not observation.get("subject", {}).get("reference"):
        problems.append("subject")
    quantity = observation.get("valueQuantity")
    if quantity is not None and not (
        quantity.get("system") == UCUM and quantity.get("code") and "value" in quantity and quantity.get("unit")
    ):
        problems.append("valueQuantity needs value, unit, the UCUM system and a code")
    if VITAL_SIGNS_PROFILE not in observation.get("meta", {}).get("profile", []):
        problems.append("meta.profile does not name the vital-signs profile")
    return problems


def test_the_vital_signs_check_catches_each_broken_invariant() -> None:
    """The checker above can fail: an Observation without value, with a coarse date or a bare component."""
    good = {
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY_SYSTEM, "code": "vital-signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": "8867-4"}]},
        "subject": {"reference": "Patient/x"},
        "effectiveDateTime": "2024-05-01",
        "valueQuantity": {"value": 60, "unit": "bpm", "system": UCUM, "code": "/min"},
        "meta": {"profile": [VITAL_SIGNS_PROFILE]},
    }
    assert vital_signs_problems(good) == []
    coarse = {**good, "effectiveDateTime": "2024-05"}
    assert vital_signs_problems(coarse) == ["vs-1: effectiveDateTime not precise to the day"]
    valueless = {key: value for key, value in good.items() if key != "valueQuantity"}
    assert vital_signs_problems(valueless) == ["vs-2: no value and no dataAbsentReason"]
    assert vital_signs_problems({**valueless, "dataAbsentReason": {"text": "x"}}) == []
    bare_component = {**valueless, "component": [{"code": {"text": "systolic"}}]}
    assert vital_signs_problems(bare_component) == ["vs-3: component 0 has no value and no dataAbsentReason"]


def test_a_patient_without_a_profile_says_unknown_and_validates(client: TestClient, world: ReadWorld) -> None:
    answer = client.get("/v1/me/fhir/Patient", headers=auth(world.other_key))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == FHIR_JSON
    body = answer.json()
    Patient.model_validate(body)
    assert body["resourceType"] == "Patient"
    assert body["identifier"] == [{"use": "usual", "system": "urn:healthpipe:user-id", "value": world.other}]
    assert body["gender"] == "unknown"
    assert "birthDate" not in body and body["_birthDate"] == {"extension": [DATA_ABSENT]}
    assert body["name"] == [{"extension": [DATA_ABSENT]}]


def test_a_profile_set_through_the_api_is_the_patients(client: TestClient, world: ReadWorld) -> None:
    changes = {"givenName": "Anna", "familyName": "de Vries", "gender": "female", "birthDate": "1988-02-29"}
    answer = client.patch("/v1/me/profile", json=changes, headers=auth(world.user_key))
    assert answer.status_code == 200
    assert answer.json() == {"userId": world.user, "displayName": None, **changes}

    body = client.get("/v1/me/fhir/Patient", headers=auth(world.user_key)).json()
    Patient.model_validate(body)
    assert body["name"] == [{"use": "usual", "text": "Anna de Vries", "family": "de Vries", "given": ["Anna"]}]
    assert (body["gender"], body["birthDate"]) == ("female", "1988-02-29")
    assert "_birthDate" not in body
    # the admin's view of the same user is the same resource; the other user's is another one
    admin = client.get(f"/v1/users/{world.user}/fhir/Patient", headers=auth(world.admin_key)).json()
    assert admin == body
    assert client.get("/v1/me/fhir/Patient", headers=auth(world.other_key)).json()["id"] != body["id"]


def test_observations_are_the_daily_marts_rows_with_the_catalogues_codes_and_units(
    client: TestClient, world: ReadWorld
) -> None:
    answer = client.get(
        "/v1/me/fhir/Observation", params={"start": "2024-04-30", "end": "2024-05-03"}, headers=auth(world.user_key)
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == FHIR_JSON
    body = answer.json()
    Bundle.model_validate(body)
    expected = daily_rows(world, world.user, "2024-04-30", "2024-05-03")
    assert len(expected) == 7 + len(EXTRA_DAILY)
    assert (body["type"], body["total"], len(body["entry"])) == ("searchset", len(expected), len(expected))

    seen = {}
    for entry in body["entry"]:
        observation = entry["resource"]
        Observation.model_validate(observation)
        assert entry["search"] == {"mode": "match"}
        assert entry["fullUrl"] == f"urn:uuid:{observation['id']}"
        day = observation["effectivePeriod"]["start"][:10]
        metric = next(name for name in METRICS if METRICS[name].display_name == observation["code"]["text"])
        catalogue = METRICS[metric]
        seen[(day, metric)] = observation
        value, count, flagged = expected[(day, metric)]
        assert observation["valueQuantity"] == {
            "value": value,
            "unit": catalogue.canonical_unit,
            "system": UCUM,
            "code": catalogue.ucum_unit,
        }
        assert observation["code"]["coding"] == [
            {"system": LOINC, "code": catalogue.loinc_daily or catalogue.loinc_sample}
        ]
        category = observation["category"][0]["coding"][0]
        assert (category["system"], category["code"]) == (CATEGORY_SYSTEM, catalogue.observation_category.value)
        assert observation["subject"]["identifier"] == {"system": "urn:healthpipe:user-id", "value": world.user}
        if flagged:
            assert observation["note"][0]["text"].startswith(f"{flagged} of the {count} samples")
        else:
            assert "note" not in observation
        if catalogue.observation_category is ObservationCategory.VITAL_SIGNS:
            assert vital_signs_problems(observation) == [], (day, metric)
        else:
            assert "meta" not in observation
    assert set(seen) == set(expected)
    assert len({o["id"] for o in seen.values()}) == len(seen)

    # the UCUM codes, written out: what a FHIR consumer will read
    units = {metric: o["valueQuantity"]["code"] for (_, metric), o in seen.items()}
    assert units == {
        "STEPS": "{steps}",
        "HEART_RATE": "/min",
        "ACTIVE_ENERGY": "kcal",
        "SLEEP_ANALYSIS": "min",
        "RESTING_HEART_RATE": "/min",
        "OXYGEN_SATURATION": "%",
        "WEIGHT": "kg",
        "BODY_FAT": "%",
        "BLOOD_GLUCOSE": "mg/dL",
    }
    categories = {metric: o["category"][0]["coding"][0]["code"] for (_, metric), o in seen.items()}
    assert sorted(m for m, c in categories.items() if c == "vital-signs") == [
        "BODY_FAT",
        "HEART_RATE",
        "OXYGEN_SATURATION",
        "RESTING_HEART_RATE",
        "WEIGHT",
    ]
    assert categories["BLOOD_GLUCOSE"] == "laboratory" and categories["SLEEP_ANALYSIS"] == "activity"
    # the local day in the user's zone: Amsterdam in summer time, then Tokyo from the zone history
    assert seen[("2024-05-01", "STEPS")]["effectivePeriod"] == {
        "start": "2024-05-01T00:00:00+02:00",
        "end": "2024-05-01T23:59:59+02:00",
    }
    assert seen[("2024-05-03", "STEPS")]["effectivePeriod"] == {
        "start": "2024-05-03T00:00:00+09:00",
        "end": "2024-05-03T23:59:59+09:00",
    }
    # the same request answers the same ids
    again = client.get(
        "/v1/me/fhir/Observation", params={"start": "2024-04-30", "end": "2024-05-03"}, headers=auth(world.user_key)
    ).json()
    assert [e["resource"]["id"] for e in again["entry"]] == [e["resource"]["id"] for e in body["entry"]]


def test_types_filter_the_bundle_and_an_empty_range_is_an_empty_bundle(client: TestClient, world: ReadWorld) -> None:
    answer = client.get(
        "/v1/me/fhir/Observation",
        params={"start": "2024-04-30", "end": "2024-05-02", "types": "HEART_RATE, WEIGHT"},
        headers=auth(world.user_key),
    ).json()
    Bundle.model_validate(answer)
    resources = [e["resource"] for e in answer["entry"]]
    got = sorted((r["effectivePeriod"]["start"][:10], r["code"]["text"]) for r in resources)
    assert got == [("2024-05-01", "Heart rate"), ("2024-05-01", "Weight"), ("2024-05-02", "Heart rate")]
    assert answer["total"] == 3
    empty = client.get(
        "/v1/me/fhir/Observation", params={"start": "2023-01-01", "end": "2023-01-31"}, headers=auth(world.user_key)
    ).json()
    Bundle.model_validate(empty)
    assert empty == {"resourceType": "Bundle", "type": "searchset", "total": 0}


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"start": "2024-01-01", "end": "2025-01-05"}, "observations: at most 370 days from start to end"),
        ({"start": "2024-05-02", "end": "2024-05-01"}, "end (2024-05-01) is before start (2024-05-02)"),
        ({"start": "2024-05-01", "end": "2024-05-02", "types": "STEPS,PULSE"}, "unknown type(s) 'PULSE'"),
        ({"start": "2024-05-01", "end": "2024-05-02", "types": " , "}, "name at least one type"),
    ],
)
def test_bad_observation_requests_are_422_naming_the_fault(
    client: TestClient, world: ReadWorld, params: dict[str, str], detail: str
) -> None:
    answer = client.get("/v1/me/fhir/Observation", params=params, headers=auth(world.user_key))
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/json"
    assert detail in answer.json()["detail"]


def test_a_bad_date_is_422_naming_the_parameter(client: TestClient, world: ReadWorld) -> None:
    answer = client.get(
        "/v1/me/fhir/Observation", params={"start": "2024-02-30", "end": "2024-03-01"}, headers=auth(world.user_key)
    )
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["query", "start"]


def test_another_users_key_reaches_nothing_of_this_user(client: TestClient, world: ReadWorld) -> None:
    mine = client.get(
        "/v1/me/fhir/Observation", params={"start": "2024-04-30", "end": "2024-05-03"}, headers=auth(world.user_key)
    ).json()
    theirs = client.get(
        "/v1/me/fhir/Observation", params={"start": "2024-04-30", "end": "2024-05-03"}, headers=auth(world.other_key)
    ).json()
    # the other user's one day: their own 12,345 steps, none of the first user's ids
    assert [e["resource"]["valueQuantity"]["value"] for e in theirs["entry"]] == [12345.0]
    assert {e["resource"]["subject"]["identifier"]["value"] for e in theirs["entry"]} == {world.other}
    assert not {e["fullUrl"] for e in theirs["entry"]} & {e["fullUrl"] for e in mine["entry"]}
    # the first user's data under /v1/users/{id}: an admin key only
    for path in ("Patient", "Observation?start=2024-04-30&end=2024-05-03"):
        refused = client.get(f"/v1/users/{world.user}/fhir/{path}", headers=auth(world.other_key))
        assert refused.status_code == 403 and world.user not in refused.text
    admin = client.get(
        f"/v1/users/{world.user}/fhir/Observation",
        params={"start": "2024-04-30", "end": "2024-05-03"},
        headers=auth(world.admin_key),
    )
    assert admin.json() == mine
    assert client.get("/v1/users/nobody_here/fhir/Patient", headers=auth(world.admin_key)).status_code == 404
    # an admin key has no /v1/me data
    assert client.get("/v1/me/fhir/Patient", headers=auth(world.admin_key)).status_code == 403
    assert client.get("/v1/me/fhir/Patient").status_code == 401
