"""The pure FHIR mapping (pipeline/fhir/): local-day periods across daylight saving, a value that is not a number,
stable ids, names from a profile. Each result also parses with the fhir.resources R4B models."""

from __future__ import annotations

import datetime as dt

from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient

from pipeline.fhir.observations import DailyValue, daily_observation, local_day_period
from pipeline.fhir.patient import patient
from pipeline.profiles import Profile


def test_a_daylight_saving_day_starts_and_ends_at_its_own_offsets() -> None:
    # Europe/Amsterdam: 31 March 2024 is 23 hours long (+01:00 until 02:00, then +02:00); 27 October 25 hours
    assert local_day_period(dt.date(2024, 3, 31), "Europe/Amsterdam") == {
        "start": "2024-03-31T00:00:00+01:00",
        "end": "2024-03-31T23:59:59+02:00",
    }
    assert local_day_period(dt.date(2024, 10, 27), "Europe/Amsterdam") == {
        "start": "2024-10-27T00:00:00+02:00",
        "end": "2024-10-27T23:59:59+01:00",
    }
    assert local_day_period(dt.date(2024, 5, 1), "-03:30") == {
        "start": "2024-05-01T00:00:00-03:30",
        "end": "2024-05-01T23:59:59-03:30",
    }


def test_a_value_that_is_not_a_number_is_a_data_absent_reason() -> None:
    observation = daily_observation("anna", DailyValue(dt.date(2024, 5, 1), "WEIGHT", float("nan"), 1, 0, "UTC"))
    Observation.model_validate(observation)
    assert "valueQuantity" not in observation
    assert observation["dataAbsentReason"] == {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "not-a-number"}]
    }


def test_ids_depend_on_user_metric_and_day_only() -> None:
    row = DailyValue(dt.date(2024, 5, 1), "STEPS", 10.0, 1, 0, "UTC")
    same = DailyValue(dt.date(2024, 5, 1), "STEPS", 99.0, 3, 1, "Asia/Tokyo")
    ids = {
        daily_observation("anna", row)["id"],
        daily_observation("anna", DailyValue(dt.date(2024, 5, 2), "STEPS", 10.0, 1, 0, "UTC"))["id"],
        daily_observation("anna", DailyValue(dt.date(2024, 5, 1), "DISTANCE", 10.0, 1, 0, "UTC"))["id"],
        daily_observation("ben", row)["id"],
    }
    assert len(ids) == 4
    assert daily_observation("anna", row)["id"] == daily_observation("anna", same)["id"]


def test_a_display_name_alone_is_the_names_text() -> None:
    resource = patient(Profile("anna@home", "Anna K.", None, None, "female", None))
    Patient.model_validate(resource)
    assert resource["name"] == [{"use": "usual", "text": "Anna K."}]
    assert resource["identifier"][0]["value"] == "anna@home"  # a user id a FHIR id could not hold
    assert resource["id"] != "anna@home" and len(resource["id"]) == 36
    only_family = patient(Profile("ben", None, None, "Okafor", None, dt.date(1961, 7, 4)))
    assert only_family["name"] == [{"use": "usual", "family": "Okafor", "text": "Okafor"}]
    assert (only_family["gender"], only_family["birthDate"]) == ("unknown", "1961-07-04")
