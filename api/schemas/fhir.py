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


class Extension(FhirModel):
    url: str
    value_code: str | None = None


class Element(FhirModel):
    """What stands in for a primitive without a value (``_birthDate``): its extensions."""

    extension: list[Extension]


class Coding(FhirModel):
    system: str
    code: str
    display: str | None = None


class CodeableConcept(FhirModel):
    coding: list[Coding]
    text: str | None = None


class Identifier(FhirModel):
    use: str | None = None
    system: str
    value: str


class Reference(FhirModel):
    reference: str
    identifier: Identifier | None = None


class HumanName(FhirModel):
    extension: list[Extension] | None = None
    use: str | None = None
    text: str | None = None
    family: str | None = None
    given: list[str] | None = None


class Patient(FhirModel):
    resource_type: Literal["Patient"] = "Patient"
    id: str
    identifier: list[Identifier]
    name: list[HumanName]
    gender: Literal["male", "female", "other", "unknown"]
    birth_date: dt.date | None = None
    birth_date_absent: Element | None = Field(default=None, alias="_birthDate")

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


class Meta(FhirModel):
    profile: list[str]


class Period(FhirModel):
    start: str
    end: str


class Quantity(FhirModel):
    value: float
    unit: str
    system: str
    code: str


class Annotation(FhirModel):
    text: str


class Observation(FhirModel):
    resource_type: Literal["Observation"] = "Observation"
    id: str
    meta: Meta | None = None
    status: Literal["final"]
    category: list[CodeableConcept]
    code: CodeableConcept
    subject: Reference
    effective_period: Period
    value_quantity: Quantity | None = None
    data_absent_reason: CodeableConcept | None = None
    note: list[Annotation] | None = None


class BundleSearch(FhirModel):
    mode: Literal["match"]


class BundleEntry(FhirModel):
    full_url: str
    resource: Observation
    search: BundleSearch


class Bundle(FhirModel):
    resource_type: Literal["Bundle"] = "Bundle"
    type: Literal["searchset"]
    total: int
    entry: list[BundleEntry] | None = None
