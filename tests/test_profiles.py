"""Profile rules (pipeline/profiles.py) and `healthpipe users profile`, which sets them from the command line."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.engine import URL

from pipeline import cli
from pipeline.accounts import AccountError
from pipeline.profiles import checked_birth_date, checked_changes


def test_a_birth_date_may_be_today_anywhere_on_earth_but_not_later() -> None:
    # 20:00 UTC on 1 May is already 2 May in Kiribati (UTC+14), not yet 3 May anywhere
    now = dt.datetime(2024, 5, 1, 20, 0, tzinfo=dt.UTC)
    assert checked_birth_date(dt.date(2024, 5, 2), now) == dt.date(2024, 5, 2)
    with pytest.raises(AccountError, match="2024-05-03 is in the future"):
        checked_birth_date(dt.date(2024, 5, 3), now)
    assert checked_birth_date(dt.date(1900, 1, 1), now) == dt.date(1900, 1, 1)
    with pytest.raises(AccountError, match="before 1900-01-01"):
        checked_birth_date(dt.date(1899, 12, 31), now)


def test_changes_are_checked_field_by_field() -> None:
    assert checked_changes({"gender": "female", "given_name": "Ana", "family_name": None}) == {
        "gender": "female",
        "given_name": "Ana",
        "family_name": None,
    }
    with pytest.raises(AccountError, match="unknown profile field"):
        checked_changes({"email": "a@b.c"})
    with pytest.raises(AccountError, match="gender is one of male, female, other, unknown"):
        checked_changes({"gender": "F"})
    with pytest.raises(AccountError, match="given name has at most 100 characters, not 101"):
        checked_changes({"given_name": "x" * 101})


def test_the_profile_command_sets_shows_and_clears(warehouse_url: URL, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["users", "add", "anna", "--name", "Anna"]) == 0
    capsys.readouterr()
    options = ["--given-name", "Anna", "--family-name", "Jansen", "--gender", "female", "--birth-date", "1990-01-02"]
    code = cli.main(["users", "profile", "anna", *options])
    assert code == 0
    assert capsys.readouterr().out.splitlines() == [
        "display name: Anna",
        "given name: Anna",
        "family name: Jansen",
        "gender: female",
        "birth date: 1990-01-02",
    ]
    assert cli.main(["users", "profile", "anna", "--family-name", ""]) == 0
    assert "family name: -" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gender", "x"], "gender is one of male, female, other, unknown"),
        (["--birth-date", "02/01/1990"], "birth date '02/01/1990' is not a date (YYYY-MM-DD)"),
        (["--birth-date", "1850-01-01"], "birth date 1850-01-01 is before 1900-01-01"),
    ],
)
def test_the_profile_command_refuses_a_bad_value_in_one_line(
    warehouse_url: URL, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert cli.main(["users", "add", "ben"]) == 0
    capsys.readouterr()
    assert cli.main(["users", "profile", "ben", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("healthpipe: error: ") and message in err and len(err.splitlines()) == 1
    assert cli.main(["users", "profile", "nobody"]) == 2
    assert "no user 'nobody'" in capsys.readouterr().err
