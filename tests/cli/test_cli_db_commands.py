"""``healthpipe db url`` and ``healthpipe db psql``: the warehouse in psql, without the password in the process list."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import URL

from pipeline.infra.embedded_server import POSTGRES_BIN, EmbeddedPostgres

ROOT = Path(__file__).resolve().parents[2]
BUNDLED_PSQL = POSTGRES_BIN / "psql"


def healthpipe(url: URL | Path, *args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    """The command line on the warehouse at ``url``, or on the embedded one with its home at a ``Path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEALTHPIPE_", "PG"))}
    if isinstance(url, Path):
        env["HEALTHPIPE_HOME"] = str(url)
    else:
        env["HEALTHPIPE_DATABASE_URL"] = url.render_as_string(hide_password=False)
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_db_url_prints_a_url_that_psql_accepts(make_database: Callable[[], URL]) -> None:
    url = make_database()

    result = healthpipe(url, "db", "url")

    assert result.returncode == 0, result.stderr
    printed = result.stdout.strip()
    assert printed == f"postgresql://{url.username}@{url.host}:{url.port}/{url.database}"
    psql = shutil.which("psql") or str(BUNDLED_PSQL)
    answer = subprocess.run([psql, printed, "-XAtc", "select 1"], capture_output=True, text=True, timeout=30)
    assert (answer.returncode, answer.stdout) == (0, "1\n"), answer.stderr


def test_db_url_leaves_the_password_out_unless_asked(make_database: Callable[[], URL]) -> None:
    url = make_database().set(password="s3cret/pw")

    plain = healthpipe(url, "db", "url")
    with_password = healthpipe(url, "db", "url", "--with-password")

    assert plain.stdout.strip() == f"postgresql://{url.username}@{url.host}:{url.port}/{url.database}"
    assert "s3cret" not in plain.stdout + plain.stderr
    assert "--with-password" in plain.stderr  # says how to get it
    assert (
        with_password.stdout.strip() == f"postgresql://{url.username}:s3cret%2Fpw@{url.host}:{url.port}/{url.database}"
    )


def test_db_psql_runs_psql_on_the_warehouse_with_the_arguments_given(make_database: Callable[[], URL]) -> None:
    url = make_database()

    result = healthpipe(url, "db", "psql", "-XAt", "-c", "select 42", "-c", "select current_database()")

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"42\n{url.database}\n"


def test_db_psql_passes_the_password_in_the_environment_not_on_the_command_line(
    make_database: Callable[[], URL],
) -> None:
    url = make_database().set(password="s3cret-pw")  # the test server trusts loopback: any password is accepted
    show_psql_command_line = r"\! tr '\0' ' ' < /proc/$PPID/cmdline"  # psql's \! shell is psql's child

    result = healthpipe(
        url, "db", "psql", "-XAt", "-c", r"\getenv pw PGPASSWORD", "-c", r"\echo :pw", "-c", show_psql_command_line
    )

    assert result.returncode == 0, result.stderr
    password_seen, command_line = result.stdout.splitlines()
    assert password_seen == "s3cret-pw"
    assert f"postgresql://{url.username}@{url.host}:{url.port}/{url.database}" in command_line
    assert "s3cret" not in command_line


def test_without_psql_on_the_path_db_psql_uses_the_one_bundled_with_the_embedded_server(
    make_database: Callable[[], URL], tmp_path: Path
) -> None:
    url = make_database()

    result = healthpipe(url, "db", "psql", "-XAtc", "select 42", path=str(tmp_path))

    assert result.returncode == 0, result.stderr
    assert result.stdout == "42\n"
    assert f"no psql on PATH; using {BUNDLED_PSQL}" in result.stderr


def test_db_psql_exits_with_psql_s_exit_code(make_database: Callable[[], URL]) -> None:
    result = healthpipe(make_database(), "db", "psql", "-X", "-v", "ON_ERROR_STOP=1", "-c", "select 1/0")

    assert result.returncode == 1  # psql's "the server reported an error"
    assert "division by zero" in result.stderr


def test_db_psql_and_db_url_reach_the_embedded_warehouse(tmp_path: Path) -> None:
    home = tmp_path / "home"
    try:
        result = healthpipe(home, "db", "psql", "-XAtc", "select current_database(), inet_server_port()")
        status = EmbeddedPostgres(home).status()  # started by the command, as every db command does
        url = healthpipe(home, "db", "url")
    finally:
        EmbeddedPostgres(home).stop()

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"healthpipe|{status.port}\n"
    assert url.stdout == f"postgresql://postgres@127.0.0.1:{status.port}/healthpipe\n"
