"""The FHIR R4 resources the API answers, as far as it fills them in (JSON names as FHIR spells them). The content
comes from `pipeline.fhir`; these models document it in OpenAPI and check its shape on the way out."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class FhirModel(BaseModel):
    """FHIR JSON: camelCase names, no unknown elements, nothing null (an absent element is left out)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True, extra="forbid")


class FhirExtension(FhirModel):
    url: str
    value_code: str | None = None


class FhirElement(FhirModel):
    """What stands in for a primitive without a value (``_birthDate``): its extensions."""

    extension: list[FhirExtension]


class FhirCoding(FhirModel):
    system: str
    code: str
    display: str | None = None


class FhirCodeableConcept(FhirModel):
    coding: list[FhirCoding]
    text: str | None = None


class FhirIdentifier(FhirModel):
    use: str | None = None
    system: str
    value: str


class FhirReference(FhirModel):
    reference: str
    identifier: FhirIdentifier | None = None


class FhirHumanName(FhirModel):
    extension: list[FhirExtension] | None = None
    use: str | None = None
    text: str | None = None
    family: str | None = None
    given: list[str] | None = None


class FhirPatient(FhirModel):
    resource_type: Literal["Patient"] = "Patient"
    id: str
    identifier: list[FhirIdentifier]
    name: list[FhirHumanName]
    gender: Literal["male", "female", "other", "unknown"]
    birth_date: dt.date | None = None
    birth_date_absent: FhirElement | None = Field(default=None, alias="_birthDate")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "resourceType": "Patient",
                    "id": "a7466f45-ffd5-5127-a3c1-fab0e8a12a22",
                    "identifier": [{"use": "usual", "system": "urn:healthpipe:user-id", "value": "anna"}],
                    "name": [{"use": "usual", "text": "Anna de Vries", "family": "de Vries", "given": ["Anna"]}],
                    "gender": "female",
                    "birthDate": "1990-01-02",
                }
            ]
        }
    )


class FhirMeta(FhirModel):
    profile: list[str]


class FhirPeriod(FhirModel):
    start: str
    end: str


class FhirQuantity(FhirModel):
    value: float
    unit: str
    system: str
    code: str


class FhirAnnotation(FhirModel):
    text: str


class FhirObservation(FhirModel):
    resource_type: Literal["Observation"] = "Observation"
    id: str
    meta: FhirMeta | None = None
    status: Literal["final"]
    category: list[FhirCodeableConcept]
    code: FhirCodeableConcept
    subject: FhirReference
    effective_period: FhirPeriod
    value_quantity: FhirQuantity | None = None
    data_absent_reason: FhirCodeableConcept | None = None
    note: list[FhirAnnotation] | None = None


class FhirBundleSearch(FhirModel):
    mode: Literal["match"]


class FhirBundleEntry(FhirModel):
    full_url: str
    resource: FhirObservation
    search: FhirBundleSearch


class FhirBundle(FhirModel):
    resource_type: Literal["Bundle"] = "Bundle"
    type: Literal["searchset"]
    total: int
    entry: list[FhirBundleEntry] | None = None
