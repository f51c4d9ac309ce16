"""The caller's profile: what the FHIR Patient export shows of them."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field

from api.schemas.base import CamelModel
from pipeline.profiles import NAME_MAX_LENGTH, Gender, checked_birth_date, checked_name

Name = Annotated[str, Field(min_length=1, max_length=NAME_MAX_LENGTH), AfterValidator(checked_name)]
BirthDate = Annotated[dt.date, AfterValidator(checked_birth_date)]


class Profile(CamelModel):
    user_id: str
    display_name: str | None
    given_name: str | None
    family_name: str | None
    gender: Gender | None
    birth_date: dt.date | None


class ProfileChanges(CamelModel):
    """The fields to change: a field left out keeps its value, ``null`` clears it. Names have 1 to 100 printable
    characters; gender is FHIR's administrative gender; a birth date is from 1900-01-01 and not in the future."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"givenName": "Anna", "familyName": "de Vries", "gender": "female"}]},
    )

    display_name: Name | None = None
    given_name: Name | None = None
    family_name: Name | None = None
    gender: Gender | None = None
    birth_date: BirthDate | None = None
