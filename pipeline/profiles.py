"""A user's profile (``app.users``: display, given and family name, administrative gender, birth date): the rules a
value must meet, and reading and changing it. The command line and the API both check values here, so they refuse
the same things with the same words."""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from psycopg import sql

from pipeline import data_version
from pipeline.accounts import AccountError
from pipeline.infra.database import Connection
from pipeline.privacy.fields import open_sealed, seal
from pipeline.privacy.keyring import keyring_for

NAME_MAX_LENGTH = 100
EARLIEST_BIRTH_DATE = dt.date(1900, 1, 1)
# The furthest-ahead civil time zone (Kiribati, UTC+14): a date that is today there is not in the future anywhere.
_EARLIEST_ZONE_AHEAD = dt.timedelta(hours=14)


class Gender(StrEnum):
    """FHIR R4 AdministrativeGender (http://hl7.org/fhir/administrative-gender)."""

    MALE = "male"
    FEMALE = "female"
    OTHER = "other"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Profile:
    user_id: str
    display_name: str | None
    given_name: str | None
    family_name: str | None
    gender: str | None
    birth_date: dt.date | None


# column -> its SQL type (for the typed comparison of the update)
_COLUMNS = {
    "display_name": "text",
    "given_name": "text",
    "family_name": "text",
    "gender": "text",
    "birth_date": "date",
}
PROFILE_FIELDS = tuple(_COLUMNS)


def checked_name(value: str, what: str = "a name") -> str:
    """``value`` if it can be a name: 1 to 100 characters, printable (no control characters, no unpaired
    surrogates: PostgreSQL text cannot hold NUL), not only spaces."""
    if not value.strip():
        raise AccountError(f"{what} must not be empty (leave it out, or clear it)")
    if len(value) > NAME_MAX_LENGTH:
        raise AccountError(f"{what} has at most {NAME_MAX_LENGTH} characters, not {len(value)}")
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in value):
        raise AccountError(f"{what} must not contain control characters")
    return value


def checked_gender(value: str) -> Gender:
    try:
        return Gender(value)
    except ValueError:
        known = ", ".join(g.value for g in Gender)
        raise AccountError(f"gender is one of {known} (FHIR administrative gender), not {value!r}") from None


def checked_birth_date(value: dt.date, now: dt.datetime | None = None) -> dt.date:
    """``value`` if it can be a living person's birth date: from 1900-01-01 and not after today anywhere on Earth."""
    latest = ((now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC) + _EARLIEST_ZONE_AHEAD).date()
    if value < EARLIEST_BIRTH_DATE:
        raise AccountError(f"birth date {value.isoformat()} is before {EARLIEST_BIRTH_DATE.isoformat()}")
    if value > latest:
        raise AccountError(f"birth date {value.isoformat()} is in the future")
    return value


def checked_changes(changes: Mapping[str, object]) -> dict[str, object]:
    """The changes with each value checked (None clears a field). Unknown fields are refused."""
    unknown = sorted(set(changes) - set(_COLUMNS))
    if unknown:
        raise AccountError(f"unknown profile field(s) {', '.join(unknown)}; known: {', '.join(_COLUMNS)}")
    checked: dict[str, object] = {}
    for field, value in changes.items():
        if value is None:
            checked[field] = None
        elif field == "gender":
            checked[field] = checked_gender(str(value)).value
        elif field == "birth_date":
            if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
                raise AccountError(f"birth date must be a date (YYYY-MM-DD), not {value!r}")
            checked[field] = checked_birth_date(value)
        else:
            checked[field] = checked_name(str(value), field.replace("_", " "))
    return checked


def _place(field: str) -> str:
    return f"app.users.{field}"


def get_profile(conn: Connection, user_id: str) -> Profile | None:
    """The user's profile, decrypted with the user's key; None for an unknown user."""
    row = conn.execute(
        sql.SQL("SELECT {} FROM app.users WHERE user_id = %s").format(
            sql.SQL(", ").join(map(sql.Identifier, _COLUMNS))
        ),
        (user_id,),
    ).fetchone()
    if row is None:
        return None
    values: dict[str, object] = dict.fromkeys(_COLUMNS)
    if any(sealed is not None for sealed in row):
        key = keyring_for(conn).existing_key(user_id)
        for field, sealed in zip(_COLUMNS, row, strict=True):
            values[field] = open_sealed(key, _place(field), user_id, sealed)  # type: ignore[arg-type]
    birth = values["birth_date"]
    values["birth_date"] = None if birth is None else dt.date.fromisoformat(str(birth))
    return Profile(user_id=user_id, **values)  # type: ignore[arg-type]


def update_profile(conn: Connection, user_id: str, changes: Mapping[str, object]) -> Profile | None:
    """Set the given fields (None clears one; fields left out keep their value) after checking them (`AccountError`
    says what is wrong), and return the profile; None for an unknown user. A real change advances the user's data
    version in the same transaction (the Patient export and the profile read change with it); setting what is
    already there changes nothing."""
    checked = checked_changes(changes)
    with conn.transaction():
        conn.execute("SELECT 1 FROM app.users WHERE user_id = %s FOR UPDATE", (user_id,))
        current = get_profile(conn, user_id)
        if current is None:
            return None
        # encryption makes every ciphertext new: what changed is decided on the decrypted values
        changed = {name: value for name, value in checked.items() if getattr(current, name) != value}
        if changed:
            key = keyring_for(conn).data_key(user_id)
            sealed = [
                seal(key, _place(name), user_id, None if value is None else _text(value))
                for name, value in changed.items()
            ]
            columns = sql.SQL(", ").join(map(sql.Identifier, changed))
            values = sql.SQL(", ").join(sql.Placeholder() for _ in changed)
            conn.execute(
                sql.SQL("UPDATE app.users SET ({columns}) = ROW({values}) WHERE user_id = %s").format(
                    columns=columns, values=values
                ),
                (*sealed, user_id),
            )
            data_version.advance(conn, [user_id])
            current = replace(current, **changed)  # type: ignore[arg-type]
        return current


def _text(value: object) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)
