"""``healthpipe``: the command line of the project.

healthpipe up                 database + migrations + Dagster UI + API, until Ctrl-C
healthpipe db start|stop|status|migrate|url
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from pipeline.infra.database import redacted, warehouse_url
from pipeline.infra.embedded_server import EmbeddedPostgres, EmbeddedServerError
from pipeline.infra.migrations import MigrationError, current_version, migrate
from pipeline.infra.settings import Settings


def _embedded(settings: Settings) -> EmbeddedPostgres:
    if not settings.uses_embedded_database:
        raise EmbeddedServerError(
            "HEALTHPIPE_DATABASE_URL is set, so the embedded server is not used; manage that server directly"
        )
    return EmbeddedPostgres(settings.home, settings.embedded_port)


def cmd_db_start(settings: Settings, _: argparse.Namespace) -> int:
    status = _embedded(settings).start()
    print(status.describe())
    print(f"URL: {status.url()}")
    return 0


def cmd_db_stop(settings: Settings, _: argparse.Namespace) -> int:
    print(_embedded(settings).stop().describe())
    return 0


def cmd_db_status(settings: Settings, _: argparse.Namespace) -> int:
    if settings.uses_embedded_database:
        status = EmbeddedPostgres(settings.home, settings.embedded_port).status()
        print(status.describe())
        if not status.running:
            return 1
    url = warehouse_url(settings, start_embedded=False)
    print(f"warehouse: {redacted(url)}, schema version {current_version(url)}")
    return 0


def cmd_db_url(settings: Settings, _: argparse.Namespace) -> int:
    print(redacted(warehouse_url(settings)))
    return 0


def cmd_db_migrate(settings: Settings, _: argparse.Namespace) -> int:
    url = warehouse_url(settings)
    report = migrate(url)
    applied = ", ".join(f"{v:04d}" for v in report.applied) or "none (already up to date)"
    print(f"{redacted(url)}: applied {applied}; schema version {report.version}")
    return 0


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.stack import run_stack

    return run_stack(settings, exit_when_ready=args.exit_when_ready, with_api=not args.no_api)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="healthpipe", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="start the database, migrate, run the Dagster UI and the API")
    up.add_argument(
        "--exit-when-ready",
        action="store_true",
        help="stop everything once the UI's code location and the API answer (a smoke test)",
    )
    up.add_argument("--no-api", action="store_true", help="do not start the API")
    up.set_defaults(handler=cmd_up)

    db = commands.add_parser("db", help="the warehouse database").add_subparsers(dest="db_command", required=True)
    for name, handler, text in [
        ("start", cmd_db_start, "start the embedded PostgreSQL (no-op when running)"),
        ("stop", cmd_db_stop, "stop the embedded PostgreSQL"),
        ("status", cmd_db_status, "is the server running, where, at which schema version"),
        ("url", cmd_db_url, "print the warehouse URL (password masked)"),
        ("migrate", cmd_db_migrate, "apply pending schema migrations (idempotent)"),
    ]:
        db.add_parser(name, help=text).set_defaults(handler=handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[Settings, argparse.Namespace], int] = args.handler
    try:
        return handler(Settings(), args)
    except (EmbeddedServerError, MigrationError, ValueError) as exc:
        print(f"healthpipe: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
