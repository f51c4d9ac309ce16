"""The data commands of ``healthpipe`` on a database they have never seen, and on one they cannot reach."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import psycopg
import pytest
from sqlalchemy.engine import URL

from pipeline import cli
from pipeline.infra.database import libpq_url
from pipeline.infra.migrations import current_version, discover_migrations
from pipeline.synthetic.generator import SyntheticConfig, generate


def test_generate_on_a_fresh_database_migrates_it_and_lands_every_sample(
    make_database: Callable[[], URL], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = make_database()  # empty: no schema at all
    monkeypatch.setenv("HEALTHPIPE_DATABASE_URL", url.render_as_string(hide_password=False))

    code = cli.main(["generate", "--users", "2", "--days", "3", "--seed", "11", "--start", "2024-05-06"])

    expected = generate(SyntheticConfig(users=2, days=3, start=dt.date(2024, 5, 6), seed=11))
    assert code == 0
    assert current_version(url) == discover_migrations()[-1].version
    with psycopg.connect(libpq_url(url)) as conn:
        read, landed, duplicates, rejected = conn.execute(
            "SELECT sum(read_count), sum(landed_count), sum(duplicate_count), sum(rejected_count) "
            "FROM app.ingest_batches WHERE status = 'done'"
        ).fetchone()  # type: ignore[misc]
        raw_rows = conn.execute("SELECT count(*) FROM raw.samples").fetchone()[0]  # type: ignore[index]
        quarantined = conn.execute("SELECT count(*) FROM raw.quarantine").fetchone()[0]  # type: ignore[index]
    assert read == len(expected.samples)
    assert read == landed + duplicates + rejected
    assert (raw_rows, quarantined) == (landed, rejected)
    assert duplicates > 0 and rejected > 0  # the generator's retries and malformed rows


def test_an_unreachable_database_is_one_line_without_the_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HEALTHPIPE_DATABASE_URL", "postgresql://someone:s3cret-pw@127.0.0.1:1/nowhere")

    code = cli.main(["keys", "list"])

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("healthpipe: database error: ") and err.count("\n") == 1
    assert "s3cret-pw" not in err
    assert "Traceback" not in err
