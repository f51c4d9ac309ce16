"""The embedded server's lifecycle, always on the embedded server (whatever HEALTHPIPE_TEST_DATABASE_URL says)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

from pipeline.infra.embedded_server import EmbeddedPostgres, EmbeddedServerError, binaries_major_version


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path / "home")
    yield server
    server.stop()


def test_start_is_idempotent_and_reports_an_already_running_server(server: EmbeddedPostgres) -> None:
    first = server.start()
    assert first.running and first.port is not None
    assert "initialised a new data folder" in first.note
    again = server.start()
    assert again.note == "already running"
    assert (again.pid, again.port) == (first.pid, first.port)
    assert server.stop().note == "stopped"
    assert server.stop().note == "was not running"
    assert not server.status().running


def test_restarts_cleanly_after_its_postmaster_is_killed_with_sigkill(server: EmbeddedPostgres) -> None:
    first = server.start()
    with psycopg.connect(first.url(), autocommit=True) as conn:
        conn.execute("CREATE TABLE survivor (id int primary key, note text)")
        conn.execute("INSERT INTO survivor VALUES (1, 'committed before the crash')")
        assert first.pid is not None
        # An open session whose backend is orphaned by the kill, like a running webserver's connection pool.
        idle = psycopg.connect(first.url(), autocommit=True)
        os.kill(first.pid, signal.SIGKILL)
        psutil.Process(first.pid).wait(10) if psutil.pid_exists(first.pid) else None
    idle.close()

    stale = server.status()
    assert not stale.running
    assert f"stale postmaster.pid (pid {first.pid})" in stale.note

    second = server.start()
    assert second.running and second.pid != first.pid
    assert "recovered from a server that was killed" in second.note
    assert second.port == first.port  # the recorded port is reused, so URLs handed out stay valid
    with psycopg.connect(second.url()) as conn:
        assert conn.execute("SELECT note FROM survivor WHERE id = 1").fetchone() == ("committed before the crash",)


def test_a_data_folder_of_another_major_version_is_refused(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "home")
    server.pgdata.mkdir(parents=True)
    (server.pgdata / "PG_VERSION").write_text("12\n")
    expected = rf"belongs to PostgreSQL 12.*ships PostgreSQL {binaries_major_version()}"
    with pytest.raises(EmbeddedServerError, match=expected):
        server.start()
    assert (server.pgdata / "PG_VERSION").read_text() == "12\n"


def test_a_non_empty_folder_that_is_not_a_data_folder_is_refused(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "home")
    server.pgdata.mkdir(parents=True)
    (server.pgdata / "notes.txt").write_text("mine")
    with pytest.raises(EmbeddedServerError, match="holds no PostgreSQL data folder"):
        server.start()
    assert (server.pgdata / "notes.txt").read_text() == "mine"


def test_url_of_a_stopped_server_tells_how_to_start_it(tmp_path: Path) -> None:
    status = EmbeddedPostgres(tmp_path / "home").status()
    with pytest.raises(EmbeddedServerError, match="healthpipe db start"):
        status.url()


def test_concurrent_starts_share_one_server(server: EmbeddedPostgres) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda _: EmbeddedPostgres(server.home).start(), range(4)))
    assert len({(s.pid, s.port) for s in statuses}) == 1
    assert sum(s.note == "already running" for s in statuses) == 3
