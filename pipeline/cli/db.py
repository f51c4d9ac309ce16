"""``healthpipe db``: the warehouse database (the embedded server, migrations, psql)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from pipeline.infra.database import libpq_url, redacted, warehouse_url, without_password
from pipeline.infra.embedded_server import EmbeddedPostgres, EmbeddedServerError
from pipeline.infra.migrations import current_version, discover_migrations, migrate
from pipeline.infra.roles import ANALYST_ROLE, require_role, role_url, set_role_password
from pipeline.infra.settings import Settings


def _embedded(settings: Settings) -> EmbeddedPostgres:
    if not settings.uses_embedded_database:
        raise EmbeddedServerError(
            "HEALTHPIPE_DATABASE_URL is set, so the embedded server is not used; manage that server directly"
        )
    return EmbeddedPostgres(settings.home, settings.embedded_port)


def cmd_start(settings: Settings, _: argparse.Namespace) -> int:
    status = _embedded(settings).start()
    print(status.describe())
    print(f"URL: {status.url()}")
    return 0


def cmd_stop(settings: Settings, _: argparse.Namespace) -> int:
    print(_embedded(settings).stop().describe())
    return 0


def cmd_status(settings: Settings, _: argparse.Namespace) -> int:
    if settings.uses_embedded_database:
        status = EmbeddedPostgres(settings.home, settings.embedded_port).status()
        print(status.describe())
        if not status.running:
            return 1
    url = warehouse_url(settings, start_embedded=False)
    database, code = current_version(url), len(discover_migrations())
    if database < code:
        state = f"behind this code's {code}: `healthpipe db migrate` applies the rest"
    elif database > code:
        state = f"newer than this code's {code}: upgrade healthpipe before using it on this database"
    else:
        state = "up to date"
    print(f"warehouse: {redacted(url)}, schema version {database}, {state}")
    return 0 if database == code else 1


def cmd_url(settings: Settings, args: argparse.Namespace) -> int:
    url = warehouse_url(settings)
    if args.role is not None:
        if args.with_password:
            raise ValueError(f"healthpipe does not keep the password of role {args.role}; the URL leaves it out")
        require_role(url, args.role)
        print(libpq_url(role_url(url, args.role)))
        if not settings.uses_embedded_database:
            print(f"# {_password_hint(args.role)}", file=sys.stderr)
        return 0
    if url.password is not None and not args.with_password:
        url = without_password(url)
        print(
            "# password left out (psql asks for it, or reads PGPASSWORD or ~/.pgpass); "
            "`healthpipe db url --with-password` includes it, `healthpipe db psql` passes it",
            file=sys.stderr,
        )
    print(libpq_url(url))
    return 0


def _password_hint(role: str) -> str:
    setter = "`healthpipe db analyst-password` sets it" if role == ANALYST_ROLE else "the server's admin sets it"
    return f"{role}'s password: psql asks for it, or reads PGPASSWORD or ~/.pgpass; {setter}"


def _split_role(psql_args: list[str]) -> tuple[str | None, list[str]]:
    """``--role NAME`` or ``--role=NAME`` in front of psql's own arguments (psql has no ``--role`` option)."""
    if psql_args[:1] == ["--role"]:
        if len(psql_args) < 2:
            raise ValueError("--role needs a role name, e.g. `healthpipe db psql --role analyst`")
        return psql_args[1], psql_args[2:]
    if psql_args[:1] and psql_args[0].startswith("--role="):
        return psql_args[0].removeprefix("--role="), psql_args[1:]
    return None, psql_args


def cmd_psql(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.infra.psql import psql_command

    role, extra = _split_role(args.psql_args)
    extra = extra[1:] if extra[:1] == ["--"] else extra
    url = warehouse_url(settings)
    if role is not None:
        require_role(url, role)
    command = psql_command(url if role is None else role_url(url, role), extra)
    if command.note:
        print(f"healthpipe: {command.note}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    # psql takes over this process: Ctrl-C cancels its query, its exit code is ours. No shell: argv as given.
    os.execve(command.argv[0], command.argv, command.env)  # noqa: S606


def _read_new_password() -> str:
    """From the terminal, typed twice without echo; else the first line of standard input (for scripts)."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    first = getpass.getpass(f"new password for {ANALYST_ROLE}: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("the two passwords differ; nothing was changed")
    return first


def cmd_analyst_password(settings: Settings, _: argparse.Namespace) -> int:
    url = warehouse_url(settings)
    set_role_password(url, ANALYST_ROLE, _read_new_password())
    print(f"{ANALYST_ROLE}: password set on {redacted(url)}")
    if settings.uses_embedded_database:
        print("(the embedded server trusts connections from this machine: it does not ask for the password)")
    return 0


def cmd_migrate(settings: Settings, _: argparse.Namespace) -> int:
    url = warehouse_url(settings)
    report = migrate(url)
    applied = ", ".join(f"{v:04d}" for v in report.applied) or "none (already up to date)"
    print(f"{redacted(url)}: applied {applied}; schema version {report.version}")
    return 0


def cmd_retention(settings: Settings, args: argparse.Namespace) -> int:
    import psycopg

    from pipeline.ingest.retention import apply_retention, describe, parse_month

    before = parse_month(args.before)  # before connecting: a malformed month is refused at once
    with psycopg.connect(libpq_url(warehouse_url(settings)), autocommit=True) as conn:
        report = apply_retention(conn, before)
    for line in describe(report):
        print(line)
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = commands.add_parser("db", help="the warehouse database").add_subparsers(dest="db_command", required=True)
    for name, handler, text in [
        ("start", cmd_start, "start the embedded PostgreSQL (no-op when running)"),
        ("stop", cmd_stop, "stop the embedded PostgreSQL"),
        (
            "status",
            cmd_status,
            "is the server running, where, at which schema version (exit 1: stopped, or not this code's version)",
        ),
        ("migrate", cmd_migrate, "apply pending schema migrations (idempotent)"),
    ]:
        db.add_parser(name, help=text).set_defaults(handler=handler)
    url = db.add_parser("url", help="print the warehouse URL for psql and other libpq clients (no password)")
    url.add_argument("--with-password", action="store_true", help="include the password")
    url.add_argument("--role", help=f"log in as this role instead, e.g. {ANALYST_ROLE} (read-only: marts, core)")
    url.set_defaults(handler=cmd_url)
    # Every argument after `psql` is psql's (-c, -f, -X, even --help): no option prefix of its own.
    psql = db.add_parser(
        "psql",
        help="open psql on the warehouse; arguments after it go to psql (e.g. -c 'select 1'), "
        f"after `--role {ANALYST_ROLE}` as that role",
        add_help=False,
        prefix_chars="\0",
    )
    psql.add_argument("psql_args", nargs=argparse.REMAINDER)
    psql.set_defaults(handler=cmd_psql)
    retention = db.add_parser(
        "retention",
        help="detach the months of raw samples before a month into schema raw_archive (kept, never deleted; "
        "they are then no longer landed or recomputed)",
    )
    retention.add_argument("--before", required=True, metavar="YYYY-MM", help="the first month to keep attached")
    retention.set_defaults(handler=cmd_retention)
    db.add_parser(
        "analyst-password",
        help=f"set the password of the read-only role {ANALYST_ROLE} (typed twice, or the first line of stdin)",
    ).set_defaults(handler=cmd_analyst_password)
