"""``healthpipe audit USER``: who read a user's data, when, through which route (app.audit_log)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from pipeline import accounts
from pipeline.audit.entries import entries_of
from pipeline.cli.warehouse import migrated_engine
from pipeline.infra.database import psycopg_connection
from pipeline.infra.settings import Settings


def cmd_audit(settings: Settings, args: argparse.Namespace) -> int:
    with psycopg_connection(migrated_engine(settings)) as conn:
        if not accounts.user_exists(conn, args.user_id):
            raise accounts.AccountError(f"no user {args.user_id!r}")
        entries = entries_of(conn, args.user_id, args.limit)
    if not entries:
        print(f"no audit entries for {args.user_id}", file=sys.stderr)
        return 0
    print(f"{'id':>8} {'at (UTC)':<26} {'by':<22} {'route':<44} {'status':>6} {'records':>8}")
    for entry in entries:
        who = (
            f"key {entry.key_prefix or entry.key_id}"
            if entry.key_id is not None
            else f"share {str(entry.share_id)[:8]}"
            if entry.share_id is not None
            else entry.channel
        )
        records = "" if entry.records is None else f"{entry.records:,}"
        at = f"{entry.at.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S}"
        print(
            f"{entry.audit_id:>8} {at:<26} {who:<22} {entry.method + ' ' + entry.route:<44} {entry.status:>6} "
            f"{records:>8}"
        )
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = commands.add_parser(
        "audit", help="who read a user's data: API keys, share links, exports, admin reads (newest first)"
    )
    audit.add_argument("user_id")
    audit.add_argument("--limit", type=int, default=100, help="most entries shown (default 100)")
    audit.set_defaults(handler=cmd_audit)
