"""``healthpipe backfill``: recompute user-days in few Dagster runs through the running webserver."""

from __future__ import annotations

import argparse
import sys
from datetime import date

from pipeline import accounts
from pipeline.cli.warehouse import migrated_engine
from pipeline.infra.database import psycopg_connection
from pipeline.infra.settings import Settings


def cmd_backfill(settings: Settings, args: argparse.Namespace) -> int:
    from urllib.parse import quote

    from pipeline import backfill  # loads Dagster: only for this command
    from pipeline.infra.executor import max_user_days_per_run
    from pipeline.samples.requests import user_days

    base_url = f"http://{settings.dagster_host}:{settings.dagster_port}"
    engine = migrated_engine(settings)
    pairs = user_days(engine, args.users.split(",") if args.users else None, args.first, args.last)
    if not pairs:
        print("healthpipe: nothing to backfill: no raw samples yet", file=sys.stderr)
        return 1
    with psycopg_connection(engine) as conn:
        all_users = accounts.user_ids(conn)
    graphql = backfill.http_graphql(base_url)
    cap = max_user_days_per_run(settings, len(pairs))
    launched = backfill.launch(graphql, pairs, all_users, cap)
    users = len({u for u, _ in pairs})
    print(
        f"backfill {launched.backfill_id}: {len(pairs):,} user-days of {users} user(s) in {len(launched.run_ids)} "
        f"run(s); {base_url}/runs?q%5B%5D={quote(f'tag:{backfill.BACKFILL_TAG}={launched.backfill_id}', safe='')}"
    )
    if settings.executor == "celery":
        print(f"  Celery: runs of up to {cap:,} user-days for HEALTHPIPE_CELERY_WORKERS={settings.celery_workers}")
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


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
