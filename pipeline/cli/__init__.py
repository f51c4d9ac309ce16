"""``healthpipe``: the command line of the project.

healthpipe up                 database + migrations + Dagster UI + API, until Ctrl-C
healthpipe db start|stop|status|migrate|url [--role analyst]|analyst-password
healthpipe db psql [--role analyst] [ARGS]   psql on the warehouse (ARGS go to psql)
healthpipe db retention --before YYYY-MM   detach older months of raw samples (kept in raw_archive)
healthpipe docs               the marts' data dictionary and lineage (dbt docs), served offline
healthpipe worker [--concurrency N]   execute steps of Celery runs (HEALTHPIPE_EXECUTOR=celery), on any machine
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import psycopg
from sqlalchemy.exc import SQLAlchemyError

from pipeline.cli import audit, backfill, data, db, docs, keys, up, users, worker
from pipeline.infra.embedded_server import EmbeddedServerError
from pipeline.infra.migrations import MigrationError
from pipeline.infra.settings import Settings
from pipeline.ingest.apple_health import AppleExportError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="healthpipe", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for group in (up, db, users, keys, audit, data, backfill, worker, docs):  # the order of `healthpipe --help`
        group.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[Settings, argparse.Namespace], int] = args.handler
    try:
        return handler(Settings(), args)
    except (
        EmbeddedServerError,
        MigrationError,
        AppleExportError,
        ValueError,
        FileNotFoundError,
        RuntimeError,  # and pipeline.backfill.BackfillError, not imported: it would load Dagster for every command
    ) as exc:
        print(f"healthpipe: error: {exc}", file=sys.stderr)
        return 2
    except (psycopg.Error, SQLAlchemyError) as exc:
        reason = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's error; its text has no password
        first_line = (str(reason).strip().splitlines() or [type(reason).__name__])[0]
        print(f"healthpipe: database error: {first_line}", file=sys.stderr)
        return 2
