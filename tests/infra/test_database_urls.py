from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from pipeline.infra.database import (
    DatabaseUrlError,
    dagster_storage_url,
    libpq_url,
    parse_postgres_url,
    redacted,
    warehouse_url,
    with_driver,
)
from pipeline.infra.settings import Settings


@pytest.mark.parametrize(
    "spelling", ["postgres://u:pw@db:5433/wh", "postgresql://u:pw@db:5433/wh", "postgresql+psycopg2://u:pw@db:5433/wh"]
)
def test_any_common_spelling_becomes_psycopg3_for_the_warehouse(spelling: str) -> None:
    settings = Settings(database_url=SecretStr(spelling), home=Path("/nonexistent"))
    url = warehouse_url(settings)
    assert url.drivername == "postgresql+psycopg"
    assert (url.host, url.port, url.database, url.username, url.password) == ("db", 5433, "wh", "u", "pw")


def test_dagster_storage_is_schema_dagster_of_the_warehouse_over_psycopg2() -> None:
    settings = Settings(database_url=SecretStr("postgresql://u:pw@db:5433/wh?sslmode=require"))
    storage = dagster_storage_url(settings, warehouse_url(settings))
    assert storage.drivername == "postgresql+psycopg2"
    assert storage.database == "wh"
    assert storage.query == {"sslmode": "require", "options": "-csearch_path=dagster"}


def test_a_separate_dagster_url_wins() -> None:
    settings = Settings(
        database_url=SecretStr("postgresql://u@db/wh"), dagster_database_url=SecretStr("postgresql://d@other/dag")
    )
    storage = dagster_storage_url(settings, warehouse_url(settings))
    assert (storage.drivername, storage.host, storage.database) == ("postgresql+psycopg2", "other", "dag")


def test_passwords_are_masked_in_messages() -> None:
    url = "postgresql://user:s3cret@db/wh"
    assert "s3cret" not in redacted(url)
    assert libpq_url(with_driver(url, "psycopg")) == url


def test_messages_show_the_url_as_libpq_spells_it_not_with_a_sqlalchemy_driver() -> None:
    assert redacted(with_driver("postgres://user:s3cret@db:5433/wh?sslmode=require", "psycopg")) == (
        "postgresql://user:***@db:5433/wh?sslmode=require"
    )
    assert redacted("postgresql+psycopg2://user@db/wh") == "postgresql://user@db/wh"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("mysql://u@db/wh", "only PostgreSQL"),
        ("postgresql://u@db", "names no database"),
        ("::not a url::", "cannot be parsed"),
    ],
)
def test_bad_urls_get_a_clear_error(url: str, reason: str) -> None:
    with pytest.raises(DatabaseUrlError, match=reason):
        parse_postgres_url(url)
