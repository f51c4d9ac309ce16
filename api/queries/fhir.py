"""What the FHIR export reads: a user's daily marts rows over a range (`pipeline.fhir.daily_values`, which the
archive export reads too)."""

from __future__ import annotations

from pipeline.fhir.daily_values import daily_values

__all__ = ["daily_values"]
