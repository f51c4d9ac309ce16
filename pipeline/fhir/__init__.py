"""FHIR R4 views of a user's data: pure functions from a profile or daily marts rows to FHIR JSON (dicts), with no
database or HTTP in them (docs/fhir.md has the mapping)."""
