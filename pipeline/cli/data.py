"""``healthpipe import`` and ``healthpipe generate``: data into the warehouse, from files or synthetic."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from pipeline import accounts
from pipeline.cli.warehouse import migrated_engine
from pipeline.infra.database import psycopg_connection
from pipeline.infra.settings import Settings
from pipeline.ingest.importer import FORMATS, IncompleteImportError, import_file
from pipeline.memory import arrow_on_system_malloc, limit_malloc_arenas
from pipeline.progress import ProgressBar


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    limit_malloc_arenas()
    arrow_on_system_malloc()
    engine = migrated_engine(settings)
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
        counts = load_dataset(migrated_engine(settings), dataset, on_progress=progress)
    finally:
        progress.close()
    print(
        f"landed {counts.landed:,}, duplicates {counts.duplicates:,}, rejected {counts.rejected:,} "
        f"in {len(dataset.batches)} arrival batches"
    )
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    gen.add_argument(
        "--users", type=int, default=10, help="how many users, named u0001, u0002, ... (the demo's names too) [10]"
    )
    gen.add_argument("--days", type=int, default=14, help="days per user [14]")
    gen.add_argument("--start", type=date.fromisoformat, default=date(2024, 3, 4), help="first local day [2024-03-04]")
    gen.add_argument("--seed", type=int, default=7, help="random seed: the same seed, the same samples [7]")
    gen.add_argument("--truth", type=Path, help="also write the ground truth (CSV) here")
    gen.add_argument("--apple-export", type=Path, help="write an Apple Health export.xml instead of loading")
    gen.set_defaults(handler=cmd_generate)
