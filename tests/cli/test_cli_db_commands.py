"""``healthpipe db url`` and ``healthpipe db psql``: the warehouse in psql, without the password in the process list."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
from sqlalchemy.engine import URL

from pipeline.infra.database import libpq_url
from pipeline.infra.embedded_server import POSTGRES_BIN, EmbeddedPostgres
from pipeline.infra.migrations import VERSION_TABLE, discover_migrations, migrate

ROOT = Path(__file__).resolve().parents[2]
BUNDLED_PSQL = POSTGRES_BIN / "psql"


def healthpipe(
    url: URL | Path, *args: str, path: str | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """The command line on the warehouse at ``url``, or on the embedded one with its home at a ``Path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEALTHPIPE_", "PG"))}
    if isinstance(url, Path):
        env["HEALTHPIPE_HOME"] = str(url)
    else:
        env["HEALTHPIPE_DATABASE_URL"] = url.render_as_string(hide_password=False)
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
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


def test_db_psql_and_db_url_reach_the_embedded_warehouse_as_owner_and_as_analyst(tmp_path: Path) -> None:
    home = tmp_path / "home"
    try:
        result = healthpipe(home, "db", "psql", "-XAtc", "select current_database(), inet_server_port()")
        status = EmbeddedPostgres(home).status()  # started by the command, as every db command does
        url = healthpipe(home, "db", "url")
        migrated = healthpipe(home, "db", "migrate")
        analyst = healthpipe(
            home, "db", "psql", "--role", "analyst", "-XAtc", "select current_user, count(*) from marts.daily"
        )
        analyst_url = healthpipe(home, "db", "url", "--role", "analyst")
    finally:
        EmbeddedPostgres(home).stop()

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"healthpipe|{status.port}\n"
    assert url.stdout == f"postgresql://postgres@127.0.0.1:{status.port}/healthpipe\n"
    assert migrated.returncode == 0, migrated.stderr
    # the embedded server trusts this machine: the analyst logs in without a password, and is not told to set one
    assert (analyst.returncode, analyst.stdout) == (0, "analyst|0\n"), analyst.stderr
    assert analyst_url.stdout == f"postgresql://analyst@127.0.0.1:{status.port}/healthpipe\n"
    assert analyst_url.stderr == ""


def analyst_url_of(url: URL) -> str:
    return f"postgresql://analyst@{url.host}:{url.port}/{url.database}"


def test_db_url_role_analyst_prints_the_analyst_s_url_without_any_password(make_database: Callable[[], URL]) -> None:
    url = make_database().set(password="owner-s3cret")
    assert healthpipe(url, "db", "migrate").returncode == 0

    result = healthpipe(url, "db", "url", "--role", "analyst")
    refused = healthpipe(url, "db", "url", "--role", "analyst", "--with-password")

    assert result.returncode == 0, result.stderr
    assert result.stdout == analyst_url_of(url) + "\n"
    assert "owner-s3cret" not in result.stdout + result.stderr + refused.stdout + refused.stderr
    assert "healthpipe db analyst-password" in result.stderr  # says how the analyst gets a password
    assert refused.returncode == 2
    assert "does not keep the password of role analyst" in refused.stderr
    psql = shutil.which("psql") or str(BUNDLED_PSQL)
    answer = subprocess.run(
        [psql, result.stdout.strip(), "-XAtc", "select current_user, count(*) from marts.daily"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (answer.returncode, answer.stdout) == (0, "analyst|0\n"), answer.stderr


def test_db_psql_role_analyst_runs_psql_as_the_analyst_without_the_owner_s_password(
    make_database: Callable[[], URL],
) -> None:
    url = make_database().set(password="owner-s3cret")
    assert healthpipe(url, "db", "migrate").returncode == 0

    who = healthpipe(url, "db", "psql", "--role", "analyst", "-XAt", "-c", "select current_user", "-c", r"\echo :PORT")
    same = healthpipe(url, "db", "psql", "--role=analyst", "-XAtc", "select current_user")
    password_seen = healthpipe(
        url, "db", "psql", "--role", "analyst", "-XAt", "-c", r"\getenv pw PGPASSWORD", "-c", r"\echo [:pw]"
    )
    denied = healthpipe(url, "db", "psql", "--role", "analyst", "-XAtc", "select * from app.api_keys")

    assert who.returncode == 0, who.stderr
    assert who.stdout == f"analyst\n{url.port}\n"
    assert same.stdout == "analyst\n"
    assert password_seen.stdout == "[:pw]\n"  # PGPASSWORD unset (psql leaves an unset :pw as written): not the owner's
    assert denied.returncode == 1
    assert "permission denied for schema app" in denied.stderr


def test_db_psql_and_url_with_a_role_the_server_lacks_say_what_to_do(make_database: Callable[[], URL]) -> None:
    url = make_database()  # not migrated: no analyst role, if no other database of this server made it

    psql = healthpipe(url, "db", "psql", "--role", "nobody_here", "-XAtc", "select 1")
    printed = healthpipe(url, "db", "url", "--role", "nobody_here")

    for result in (psql, printed):
        assert (result.returncode, result.stdout) == (2, "")
        assert "there is no role 'nobody_here' on this server; roles are made by the server's admin" in result.stderr


def test_db_psql_role_without_a_name_is_an_error(make_database: Callable[[], URL]) -> None:
    result = healthpipe(make_database(), "db", "psql", "--role")

    assert result.returncode == 2
    assert "--role needs a role name" in result.stderr


def scram_verifier_matches(verifier: str, password: str) -> bool:
    """Whether a stored SCRAM-SHA-256 verifier (RFC 5802/7677, as PostgreSQL stores it) was made from ``password``."""
    method, rest = verifier.split("$", 1)
    iterations_salt, keys = rest.split("$")
    iterations, salt = iterations_salt.split(":")
    stored_key, _server_key = keys.split(":")
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return method == "SCRAM-SHA-256" and hashlib.sha256(client_key).digest() == base64.b64decode(stored_key)


def test_db_analyst_password_stores_a_scram_verifier_of_the_password_read_from_stdin(
    make_database: Callable[[], URL],
) -> None:
    url = make_database()
    assert healthpipe(url, "db", "migrate").returncode == 0
    try:
        result = healthpipe(url, "db", "analyst-password", stdin="correct horse battery\n")
        with psycopg.connect(libpq_url(url)) as conn:
            row = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'analyst'").fetchone()
    finally:
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute("ALTER ROLE analyst PASSWORD NULL")  # the role is the whole server's: leave it as found

    assert result.returncode == 0, result.stderr
    assert "analyst: password set on" in result.stdout
    assert "correct horse" not in result.stdout + result.stderr
    assert row is not None
    assert scram_verifier_matches(str(row[0]), "correct horse battery")
    assert not scram_verifier_matches(str(row[0]), "correct horse battery\n")


def test_db_analyst_password_refuses_an_empty_password(make_database: Callable[[], URL]) -> None:
    url = make_database()
    assert healthpipe(url, "db", "migrate").returncode == 0

    result = healthpipe(url, "db", "analyst-password", stdin="")

    assert result.returncode == 2
    assert "an empty password is refused" in result.stderr


def test_db_status_says_whether_the_schema_is_this_code_s_and_exits_1_when_not(
    make_database: Callable[[], URL],
) -> None:
    url = make_database().set(password="owner-s3cret")
    newest = len(discover_migrations())
    where = f"postgresql://{url.username}:***@{url.host}:{url.port}/{url.database}"

    migrate(url, target=newest - 2)
    behind = healthpipe(url, "db", "status")
    migrate(url)
    current = healthpipe(url, "db", "status")
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute(f"INSERT INTO {VERSION_TABLE} (version, name, checksum) VALUES (%s, 'future', 'x')", (newest + 1,))
    ahead = healthpipe(url, "db", "status")

    assert (behind.returncode, behind.stdout) == (
        1,
        f"warehouse: {where}, schema version {newest - 2}, behind this code's {newest}: `healthpipe db migrate` "
        "applies the rest\n",
    )
    assert (current.returncode, current.stdout) == (0, f"warehouse: {where}, schema version {newest}, up to date\n")
    assert (ahead.returncode, ahead.stdout) == (
        1,
        f"warehouse: {where}, schema version {newest + 1}, newer than this code's {newest}: upgrade healthpipe "
        "before using it on this database\n",
    )
