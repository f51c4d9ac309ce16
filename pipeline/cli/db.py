"""``healthpipe db``: the warehouse database (the embedded server, migrations, psql)."""

from __future__ import annotations

import argparse
import os
import sys

from pipeline.infra.database import libpq_url, redacted, warehouse_url, without_password
from pipeline.infra.embedded_server import EmbeddedPostgres, EmbeddedServerError
from pipeline.infra.migrations import current_version, migrate
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
    print(f"warehouse: {redacted(url)}, schema version {current_version(url)}")
    return 0


def cmd_url(settings: Settings, args: argparse.Namespace) -> int:
    url = warehouse_url(settings)
    if url.password is not None and not args.with_password:
        url = without_password(url)
        print(
            "# password left out (psql asks for it, or reads PGPASSWORD or ~/.pgpass); "
            "`healthpipe db url --with-password` includes it, `healthpipe db psql` passes it",
            file=sys.stderr,
        )
    print(libpq_url(url))
    return 0


def cmd_psql(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.infra.psql import psql_command

    extra = args.psql_args[1:] if args.psql_args[:1] == ["--"] else args.psql_args
    command = psql_command(warehouse_url(settings), extra)
    if command.note:
        print(f"healthpipe: {command.note}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    # psql takes over this process: Ctrl-C cancels its query, its exit code is ours. No shell: argv as given.
    os.execve(command.argv[0], command.argv, command.env)  # noqa: S606


def cmd_migrate(settings: Settings, _: argparse.Namespace) -> int:
    url = warehouse_url(settings)
    report = migrate(url)
    applied = ", ".join(f"{v:04d}" for v in report.applied) or "none (already up to date)"
    print(f"{redacted(url)}: applied {applied}; schema version {report.version}")
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = commands.add_parser("db", help="the warehouse database").add_subparsers(dest="db_command", required=True)
    for name, handler, text in [
        ("start", cmd_start, "start the embedded PostgreSQL (no-op when running)"),
        ("stop", cmd_stop, "stop the embedded PostgreSQL"),
        ("status", cmd_status, "is the server running, where, at which schema version"),
        ("migrate", cmd_migrate, "apply pending schema migrations (idempotent)"),
    ]:
        db.add_parser(name, help=text).set_defaults(handler=handler)
    url = db.add_parser("url", help="print the warehouse URL for psql and other libpq clients (no password)")
    url.add_argument("--with-password", action="store_true", help="include the password")
    url.set_defaults(handler=cmd_url)
    # Every argument after `psql` is psql's (-c, -f, -X, even --help): no option prefix of its own.
    psql = db.add_parser(
        "psql",
        help="open psql on the warehouse; arguments after it go to psql (e.g. -c 'select 1')",
        add_help=False,
        prefix_chars="\0",
    )
    psql.add_argument("psql_args", nargs=argparse.REMAINDER)
    psql.set_defaults(handler=cmd_psql)
