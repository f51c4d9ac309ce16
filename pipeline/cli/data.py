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
    from pipeline.synthetic.apple_export import write_export_chunks
    from pipeline.synthetic.generator import SyntheticConfig, SyntheticDataset, generate_chunks
    from pipeline.synthetic.load import load_chunks

    config = SyntheticConfig(users=args.users, days=args.days, start=args.start, seed=args.seed)
    print(
        f"generating {config.users} users x {config.days} days from {config.start} (seed {config.seed}) ...",
        file=sys.stderr,
    )
    # a chunk of users at a time, generated then written or landed before the next: memory stays flat
    chunks = generate_chunks(config, args.users_per_chunk)
    if args.apple_export is not None:
        records = write_export_chunks(args.apple_export, (chunk.samples for chunk in chunks))
        print(f"wrote {records:,} records to {args.apple_export}")
        return 0
    engine = migrated_engine(settings)
    progress = ProgressBar("generating and loading", unit="users")
    seen = {"users": 0, "samples": 0, "batches": 0, "truth": 0}

    def landed(chunk: SyntheticDataset, _counts: object) -> None:
        if args.truth is not None:
            chunk.truth.to_csv(
                args.truth, mode="w" if seen["users"] == 0 else "a", header=seen["users"] == 0, index=False
            )
        seen["users"] += len(chunk.users)
        seen["samples"] += len(chunk.samples)
        seen["batches"] += chunk.samples["arrival_day"].nunique()
        seen["truth"] += len(chunk.truth)
        progress(seen["users"], config.users)

    try:
        counts = load_chunks(engine, chunks, on_chunk=landed)
    finally:
        progress.close()
    if args.truth is not None:
        print(f"ground truth of {seen['truth']:,} user-days in {args.truth}")
    print(
        f"{seen['samples']:,} samples: landed {counts.landed:,}, duplicates {counts.duplicates:,}, "
        f"rejected {counts.rejected:,} in {seen['batches']:,} arrival batches"
    )
    return 0


def _positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


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
        "--users",
        type=_positive,
        default=10,
        help="how many users, named u0001, u0002, ... (the demo's names too) [10]",
    )
    gen.add_argument("--days", type=_positive, default=14, help="days per user [14]")
    gen.add_argument("--start", type=date.fromisoformat, default=date(2024, 3, 4), help="first local day [2024-03-04]")
    gen.add_argument("--seed", type=int, default=7, help="random seed: the same seed, the same samples [7]")
    gen.add_argument("--truth", type=Path, help="also write the ground truth (CSV) here")
    gen.add_argument("--apple-export", type=Path, help="write an Apple Health export.xml instead of loading")
    gen.add_argument(
        "--users-per-chunk",
        type=_positive,
        help="users generated and landed at a time (memory grows with it, not with --users) [about 300 user-days]",
    )
    gen.set_defaults(handler=cmd_generate)
