"""What every request and response model shares."""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class CamelModel(BaseModel):
    """Fields are snake_case in Python and camelCase on the wire (either is accepted in requests)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True)


def _printable(value: str) -> str:
    """PostgreSQL text holds no NUL, and UTF-8 no unpaired surrogate: such a name would fail in the database (a 500);
    other control characters (tab, newline, escape) have no place in a display name either."""
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in value):
        raise ValueError("must not contain control characters or unpaired surrogates")
    return value


DisplayText = Annotated[str, AfterValidator(_printable)]
"""A name shown to people: printable text only."""
