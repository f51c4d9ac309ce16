"""core.local_day (migration 0008): the local day of a sample, asked by the batch sensor and by recompute requests
alike: its start's date in its own zone when it names one, else in the user's home zone."""

from __future__ import annotations

import datetime as dt

import psycopg
from sqlalchemy.engine import URL

from pipeline.infra.database import libpq_url


def test_a_samples_local_day_is_in_its_own_zone_else_the_home_zone(migrated_url: URL) -> None:
    start = dt.datetime(2024, 3, 6, 23, 30, tzinfo=dt.UTC)  # 00:30 on the 7th in Paris, 18:30 on the 6th in New York
    with psycopg.connect(libpq_url(migrated_url)) as conn:

        def local_day(zone: str | None, home: str) -> object:
            row = conn.execute("SELECT core.local_day(%s, %s, %s)", (start, zone, home)).fetchone()
            return row[0] if row else None

        assert local_day("Europe/Paris", "America/New_York") == dt.date(2024, 3, 7)
        assert local_day("America/New_York", "Europe/Paris") == dt.date(2024, 3, 6)
        assert local_day(None, "Europe/Paris") == dt.date(2024, 3, 7)  # no zone: the home zone's
        assert local_day("+01:00", "America/New_York") == dt.date(2024, 3, 6)  # an offset is not a zone name here
        # STABLE, not IMMUTABLE: its answer follows the server's time zone rules, which tzdata updates change
        volatility = conn.execute("SELECT provolatile FROM pg_proc WHERE oid = 'core.local_day'::regproc").fetchone()
        assert volatility == ("s",)
