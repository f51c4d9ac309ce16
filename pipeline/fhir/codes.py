"""The code systems, profiles and identifiers the FHIR export writes, and the stable ids of its resources."""

from __future__ import annotations

import datetime as dt
import uuid

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_ABSENT_REASON = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
DATA_ABSENT_REASON_EXTENSION = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
VITAL_SIGNS_PROFILE = "http://hl7.org/fhir/StructureDefinition/vitalsigns"  # the R4 base vital-signs profile
USER_ID_SYSTEM = "urn:healthpipe:user-id"
"""Patient.identifier.system: the namespace of our user ids (the value is the user id itself)."""

# Resource ids are UUIDs (version 5) named after what the resource is, so the same user, day and metric always give
# the same id, and a FHIR id's alphabet ([A-Za-z0-9-.]) never meets a user id's (which may hold _ and @).
_ID_NAMESPACE = uuid.UUID("3f0c6a52-8d0e-4c55-9a55-2f1d6b1e7c41")


def patient_id(user_id: str) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, f"Patient/{user_id}"))


def daily_observation_id(user_id: str, metric: str, day: dt.date) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, f"Observation/{user_id}/{metric}/{day.isoformat()}"))


def data_absent_reason(code: str) -> dict[str, object]:
    """A dataAbsentReason CodeableConcept."""
    return {"coding": [{"system": DATA_ABSENT_REASON, "code": code}]}


def data_absent_extension(code: str = "unknown") -> dict[str, object]:
    """The data-absent-reason extension, for an element that has no value of its own (a birth date, a name)."""
    return {"url": DATA_ABSENT_REASON_EXTENSION, "valueCode": code}
