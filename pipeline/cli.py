"""``healthpipe``: the command line of the project.

healthpipe up                 database + migrations + Dagster UI + API, until Ctrl-C
healthpipe db start|stop|status|migrate|url
healthpipe db psql [ARGS]     psql on the warehouse (ARGS go to psql)
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

import psycopg
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from pipeline import accounts
from pipeline.infra.database import create_warehouse_engine, libpq_url, redacted, warehouse_url, without_password
from pipeline.infra.embedded_server import EmbeddedPostgres, EmbeddedServerError
from pipeline.infra.migrations import MigrationError, current_version, migrate
from pipeline.infra.settings import Settings
from pipeline.ingest.apple_health import AppleExportError
from pipeline.ingest.importer import FORMATS, IncompleteImportError, import_file
from pipeline.ingest.store import psycopg_connection
from pipeline.memory import arrow_on_system_malloc, limit_malloc_arenas
from pipeline.progress import ProgressBar


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


def cmd_db_url(settings: Settings, args: argparse.Namespace) -> int:
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


def cmd_db_psql(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.infra.psql import psql_command

    extra = args.psql_args[1:] if args.psql_args[:1] == ["--"] else args.psql_args
    command = psql_command(warehouse_url(settings), extra)
    if command.note:
        print(f"healthpipe: {command.note}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    # psql takes over this process: Ctrl-C cancels its query, its exit code is ours. No shell: argv as given.
    os.execve(command.argv[0], command.argv, command.env)  # noqa: S606


def cmd_db_migrate(settings: Settings, _: argparse.Namespace) -> int:
    url = warehouse_url(settings)
    report = migrate(url)
    applied = ", ".join(f"{v:04d}" for v in report.applied) or "none (already up to date)"
    print(f"{redacted(url)}: applied {applied}; schema version {report.version}")
    return 0


def _engine(settings: Settings) -> Engine:
    """The warehouse, its schema brought up to date first (idempotent, and cheap once current): a data command on a
    fresh database must not fail on missing tables."""
    url = warehouse_url(settings)
    migrate(url)
    return create_warehouse_engine(url)


def cmd_users_add(settings: Settings, args: argparse.Namespace) -> int:
    with psycopg_connection(_engine(settings)) as conn:
        accounts.create_user(conn, args.user_id, args.timezone, args.name)
    print(f"user {args.user_id} added (home time zone {args.timezone})")
    return 0


def cmd_users_priority(settings: Settings, args: argparse.Namespace) -> int:
    with psycopg_connection(_engine(settings)) as conn:
        if args.default and args.classes:
            raise accounts.AccountError("give either device classes or --default, not both")
        if args.default:
            accounts.set_source_priority(conn, args.user_id, None)
        elif args.classes:
            accounts.set_source_priority(conn, args.user_id, args.classes)
        order, own = accounts.source_priority(conn, args.user_id)
    print(f"{args.user_id}: {' > '.join(order)}{'' if own else ' (the default)'}")
    if args.default or args.classes:
        print(
            f"# the sensor source_priority_changes recomputes {args.user_id}'s days with data (under healthpipe up)",
            file=sys.stderr,
        )
    return 0


def cmd_keys_create(settings: Settings, args: argparse.Namespace) -> int:
    with psycopg_connection(_engine(settings)) as conn:
        key = accounts.create_api_key(conn, args.user, args.admin, args.label)
    print(key)
    print(
        f"# {'admin key' if args.admin else 'key for user ' + args.user}; shown once, store it now. "
        f"Revoke with: healthpipe keys revoke {key[:11]}",
        file=sys.stderr,
    )
    return 0


def cmd_keys_list(settings: Settings, _: argparse.Namespace) -> int:
    with psycopg_connection(_engine(settings)) as conn:
        keys = accounts.list_api_keys(conn)
    for k in keys:
        state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
        owner = "admin" if k.is_admin else f"user {k.user_id}"
        print(f"{k.prefix}  {owner:<20} {state:<18} created {k.created_at:%Y-%m-%d}  {k.label or ''}")
    return 0


def cmd_keys_revoke(settings: Settings, args: argparse.Namespace) -> int:
    with psycopg_connection(_engine(settings)) as conn:
        revoked = accounts.revoke_api_key(conn, args.prefix)
    if not revoked:
        print(f"healthpipe: no active key with prefix {args.prefix}", file=sys.stderr)
        return 1
    print(f"revoked {args.prefix}")
    return 0


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    limit_malloc_arenas()
    arrow_on_system_malloc()
    engine = _engine(settings)
    if args.user is not None:
        with psycopg_connection(engine) as conn:
            if not accounts.user_exists(conn, args.user):
                if not args.create_user:
                    raise accounts.AccountError(f"no user {args.user!r}; add it or pass --create-user")
                accounts.create_user(conn, args.user, args.timezone)
    progress = ProgressBar(f"importing {args.file.name}")
    try:
        report = import_file(engine, args.file, args.user, args.format, on_progress=progress)
    except IncompleteImportError as fault:  # what came before the fault landed: its counts, then the fault
        progress.close()
        print(fault.report.describe())
        print(f"healthpipe: error: {fault}", file=sys.stderr)
        return 1
    progress.close()
    print(report.describe())
    if not report.yielded_samples:
        print(f"healthpipe: {report.nothing_imported()}", file=sys.stderr)
        return 1
    return 0


def cmd_generate(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.synthetic.apple_export import write_export
    from pipeline.synthetic.generator import SyntheticConfig, generate
    from pipeline.synthetic.load import load_dataset

    config = SyntheticConfig(users=args.users, days=args.days, start=args.start, seed=args.seed)
    print(
        f"generating {config.users} users x {config.days} days from {config.start} (seed {config.seed}) ...",
        file=sys.stderr,
    )
    dataset = generate(config)
    print(f"{len(dataset.samples):,} samples", file=sys.stderr)
    if args.apple_export is not None:
        records = write_export(args.apple_export, dataset.samples)
        print(f"wrote {records:,} records to {args.apple_export}")
        return 0
    if args.truth is not None:
        dataset.truth.to_csv(args.truth, index=False)
        print(f"ground truth of {len(dataset.truth):,} user-days in {args.truth}")
    progress = ProgressBar("loading batches", unit="batches")
    try:
        counts = load_dataset(_engine(settings), dataset, on_progress=progress)
    finally:
        progress.close()
    print(
        f"landed {counts.landed:,}, duplicates {counts.duplicates:,}, rejected {counts.rejected:,} "
        f"in {len(dataset.batches)} arrival batches"
    )
    return 0


def cmd_backfill(settings: Settings, args: argparse.Namespace) -> int:
    from urllib.parse import quote

    from pipeline import backfill
    from pipeline.samples.requests import user_days

    base_url = f"http://{settings.dagster_host}:{settings.dagster_port}"
    engine = _engine(settings)
    pairs = user_days(engine, args.users.split(",") if args.users else None, args.first, args.last)
    if not pairs:
        print("healthpipe: nothing to backfill: no raw samples yet", file=sys.stderr)
        return 1
    with engine.connect() as conn:
        all_users = [row[0] for row in conn.exec_driver_sql("SELECT user_id FROM app.users")]
    graphql = backfill.http_graphql(base_url)
    launched = backfill.launch(graphql, pairs, all_users)
    users = len({u for u, _ in pairs})
    print(
        f"backfill {launched.backfill_id}: {len(pairs):,} user-days of {users} user(s) in {len(launched.run_ids)} "
        f"run(s); {base_url}/runs?q%5B%5D={quote(f'tag:{backfill.BACKFILL_TAG}={launched.backfill_id}', safe='')}"
    )
    for run_id, rectangle in zip(launched.run_ids, launched.rectangles, strict=True):
        print(f"  run {run_id}: {rectangle.describe()}")
    if not args.wait:
        return 0
    final = backfill.wait(graphql, launched.run_ids, lambda line: print(line, flush=True))
    failed = [run_id for run_id, status in final.items() if status != "SUCCESS"]
    if failed:
        print(f"healthpipe: {len(failed)} run(s) did not succeed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.stack import run_stack

    return run_stack(settings, exit_when_ready=args.exit_when_ready, with_api=not args.no_api, demo=not args.no_demo)


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
    up.add_argument(
        "--no-demo",
        action="store_true",
        help="do not generate demo data into an empty warehouse (by default 5 users x 14 days)",
    )
    up.set_defaults(handler=cmd_up)

    db = commands.add_parser("db", help="the warehouse database").add_subparsers(dest="db_command", required=True)
    for name, handler, text in [
        ("start", cmd_db_start, "start the embedded PostgreSQL (no-op when running)"),
        ("stop", cmd_db_stop, "stop the embedded PostgreSQL"),
        ("status", cmd_db_status, "is the server running, where, at which schema version"),
        ("migrate", cmd_db_migrate, "apply pending schema migrations (idempotent)"),
    ]:
        db.add_parser(name, help=text).set_defaults(handler=handler)
    url = db.add_parser("url", help="print the warehouse URL for psql and other libpq clients (no password)")
    url.add_argument("--with-password", action="store_true", help="include the password")
    url.set_defaults(handler=cmd_db_url)
    # Every argument after `psql` is psql's (-c, -f, -X, even --help): no option prefix of its own.
    psql = db.add_parser(
        "psql",
        help="open psql on the warehouse; arguments after it go to psql (e.g. -c 'select 1')",
        add_help=False,
        prefix_chars="\0",
    )
    psql.add_argument("psql_args", nargs=argparse.REMAINDER)
    psql.set_defaults(handler=cmd_db_psql)

    users = commands.add_parser("users", help="people whose data this is").add_subparsers(
        dest="users_command", required=True
    )
    add = users.add_parser("add", help="add a user")
    add.add_argument("user_id")
    add.add_argument("--timezone", default="UTC", help="home time zone, an IANA name (default UTC)")
    add.add_argument("--name", help="display name")
    add.set_defaults(handler=cmd_users_add)
    priority = users.add_parser(
        "priority", help="show or set which device class wins where sources overlap (highest first)"
    )
    priority.add_argument("user_id")
    priority.add_argument("classes", nargs="*", help="e.g. phone watch: classes left out follow in the default order")
    priority.add_argument("--default", action="store_true", help="go back to the default order")
    priority.set_defaults(handler=cmd_users_priority)

    keys = commands.add_parser("keys", help="API keys").add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="create a key (printed once)")
    owner = create.add_mutually_exclusive_group(required=True)
    owner.add_argument("--user", help="the user the key acts as")
    owner.add_argument("--admin", action="store_true", help="an admin key (may read any user)")
    create.add_argument("--label", help="a note, e.g. which app holds it")
    create.set_defaults(handler=cmd_keys_create)
    keys.add_parser("list", help="list keys (prefixes only)").set_defaults(handler=cmd_keys_list)
    revoke = keys.add_parser("revoke", help="revoke a key by its prefix")
    revoke.add_argument("prefix")
    revoke.set_defaults(handler=cmd_keys_revoke)

    imp = commands.add_parser(
        "import",
        help="import an Apple Health export or HealthSample NDJSON/CSV",
        epilog="exit status: 0 the file yielded samples (landed, or landed before: a re-import); 1 it yielded none, or "
        "it is damaged (what came before the fault landed); 2 the import did not start (arguments, file, database)",
    )
    imp.add_argument("file", type=Path)
    imp.add_argument("--user", help="whose data it is (required for Apple exports; fills missing userId otherwise)")
    imp.add_argument("--format", choices=FORMATS, help="default: from the file name")
    imp.add_argument("--create-user", action="store_true", help="add the user if missing")
    imp.add_argument("--timezone", default="UTC", help="home time zone of a user created by --create-user")
    imp.set_defaults(handler=cmd_import)

    gen = commands.add_parser("generate", help="synthetic multi-device data with ground truth")
    gen.add_argument("--users", type=int, default=10)
    gen.add_argument("--days", type=int, default=14)
    gen.add_argument("--start", type=date.fromisoformat, default=date(2024, 3, 4), help="first local day")
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--truth", type=Path, help="also write the ground truth (CSV) here")
    gen.add_argument("--apple-export", type=Path, help="write an Apple Health export.xml instead of loading")
    gen.set_defaults(handler=cmd_generate)

    fill = commands.add_parser(
        "backfill",
        help="recompute user-days in few Dagster runs, one per users x days rectangle (needs `healthpipe up`)",
    )
    fill.add_argument("--users", help="comma-separated user ids (default: every user with data)")
    fill.add_argument(
        "--from", dest="first", type=date.fromisoformat, help="first local day (default: each user's first data)"
    )
    fill.add_argument(
        "--to", dest="last", type=date.fromisoformat, help="last local day (default: each user's last data)"
    )
    fill.add_argument("--wait", action="store_true", help="follow the runs until they end; exit 1 if any failed")
    fill.set_defaults(handler=cmd_backfill)
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


if __name__ == "__main__":
    raise SystemExit(main())
