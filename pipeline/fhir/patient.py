"""A user's profile as a FHIR R4 Patient."""

from __future__ import annotations

from typing import Any

from pipeline.fhir.codes import USER_ID_SYSTEM, data_absent_extension, patient_id
from pipeline.profiles import Gender, Profile


def patient_reference(user_id: str) -> dict[str, Any]:
    """How an Observation names its subject: the Patient's id, and the identifier that finds it without this API."""
    return {
        "reference": f"Patient/{patient_id(user_id)}",
        "identifier": {"system": USER_ID_SYSTEM, "value": user_id},
    }


def _names(profile: Profile) -> list[dict[str, Any]]:
    """Given and family name when either is known (the display name as the text), else the display name as text
    alone (it may not split into given and family: DESIGN's seed), else a name marked unknown."""
    if profile.given_name or profile.family_name:
        name: dict[str, Any] = {"use": "usual"}
        if profile.family_name:
            name["family"] = profile.family_name
        if profile.given_name:
            name["given"] = [profile.given_name]
        name["text"] = profile.display_name or " ".join(filter(None, [profile.given_name, profile.family_name]))
        return [name]
    if profile.display_name:
        return [{"use": "usual", "text": profile.display_name}]
    return [{"extension": [data_absent_extension()]}]


def patient(profile: Profile) -> dict[str, Any]:
    """The Patient of ``profile``: our user id as identifier, the names, gender (``unknown`` when not given) and
    birth date (absent with a data-absent-reason ``unknown`` when not given)."""
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": patient_id(profile.user_id),
        "identifier": [{"use": "usual", "system": USER_ID_SYSTEM, "value": profile.user_id}],
        "name": _names(profile),
        "gender": profile.gender or Gender.UNKNOWN.value,
    }
    if profile.birth_date is not None:
        resource["birthDate"] = profile.birth_date.isoformat()
    else:
        resource["_birthDate"] = {"extension": [data_absent_extension()]}
    return resource
