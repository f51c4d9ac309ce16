"""``healthpipe keys``: API keys (created, listed by prefix, revoked) and the master key of the per-user
encryption (rotated, or a new one printed)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline import accounts
from pipeline.cli.warehouse import migrated_engine
from pipeline.infra.database import psycopg_connection
from pipeline.infra.settings import Settings
from pipeline.privacy import master
from pipeline.privacy.rotation import rotate_master_key


def cmd_create(settings: Settings, args: argparse.Namespace) -> int:
    with psycopg_connection(migrated_engine(settings)) as conn:
        key = accounts.create_api_key(conn, args.user, args.admin, args.label)
    print(key)
    print(
        f"# {'admin key' if args.admin else 'key for user ' + args.user}; shown once, store it now. "
        f"Revoke with: healthpipe keys revoke {key[:11]}",
        file=sys.stderr,
    )
    return 0


def cmd_list(settings: Settings, _: argparse.Namespace) -> int:
    with psycopg_connection(migrated_engine(settings)) as conn:
        keys = accounts.list_api_keys(conn)
    for k in keys:
        state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
        owner = "admin" if k.is_admin else f"user {k.user_id}"
        print(f"{k.prefix}  {owner:<20} {state:<18} created {k.created_at:%Y-%m-%d}  {k.label or ''}")
    return 0


def cmd_revoke(settings: Settings, args: argparse.Namespace) -> int:
    with psycopg_connection(migrated_engine(settings)) as conn:
        revoked = accounts.revoke_api_key(conn, args.prefix)
    if not revoked:
        print(f"healthpipe: no active key with prefix {args.prefix}", file=sys.stderr)
        return 1
    print(f"revoked {args.prefix}")
    return 0


def cmd_rotate_master(settings: Settings, args: argparse.Namespace) -> int:
    with psycopg_connection(migrated_engine(settings)) as conn:
        rotation = rotate_master_key(conn, settings, args.new_key_file)
    print(
        f"re-wrapped {rotation.keys:,} data keys: master key {rotation.old_id} -> {rotation.new_id}, now in "
        f"{rotation.key_file}"
    )
    if rotation.key_file != settings.resolved_master_key_file:
        print(f"# set HEALTHPIPE_MASTER_KEY_FILE={rotation.key_file} for every process", file=sys.stderr)
    return 0


def cmd_new_master(_: Settings, __: argparse.Namespace) -> int:
    print(master.generate("a new key").encoded())
    print("# a new master key: for HEALTHPIPE_MASTER_KEY of a fresh install; keep it secret", file=sys.stderr)
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = commands.add_parser("keys", help="API keys").add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="create a key (printed once)")
    owner = create.add_mutually_exclusive_group(required=True)
    owner.add_argument("--user", help="the user the key acts as")
    owner.add_argument("--admin", action="store_true", help="an admin key (may read any user)")
    create.add_argument("--label", help="a note, e.g. which app holds it")
    create.set_defaults(handler=cmd_create)
    keys.add_parser("list", help="list keys (prefixes only)").set_defaults(handler=cmd_list)
    revoke = keys.add_parser("revoke", help="revoke a key by its prefix")
    revoke.add_argument("prefix")
    revoke.set_defaults(handler=cmd_revoke)
    rotate = keys.add_parser(
        "rotate-master", help="re-wrap every user's data key under a new master key (data is not re-encrypted)"
    )
    rotate.add_argument(
        "--new-key-file", type=Path, help="write the new master key here (default: the configured key file)"
    )
    rotate.set_defaults(handler=cmd_rotate_master)
    keys.add_parser("new-master", help="print a new random master key (base64)").set_defaults(handler=cmd_new_master)
