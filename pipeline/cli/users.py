"""``healthpipe users``: the people whose data this is, and their source priority."""

from __future__ import annotations

import argparse
import sys

from pipeline import accounts
from pipeline.cli.warehouse import migrated_engine
from pipeline.infra.database import psycopg_connection
from pipeline.infra.settings import Settings
from pipeline.insights.thresholds import DEFAULT_STEP_GOAL


def cmd_add(settings: Settings, args: argparse.Namespace) -> int:
    with psycopg_connection(migrated_engine(settings)) as conn:
        accounts.create_user(conn, args.user_id, args.timezone, args.name)
    print(f"user {args.user_id} added (home time zone {args.timezone})")
    return 0


def cmd_priority(settings: Settings, args: argparse.Namespace) -> int:
    with psycopg_connection(migrated_engine(settings)) as conn:
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


def cmd_goal(settings: Settings, args: argparse.Namespace) -> int:
    with psycopg_connection(migrated_engine(settings)) as conn:
        if args.default and args.steps is not None:
            raise accounts.AccountError("give either --steps or --default, not both")
        if args.default or args.steps is not None:
            accounts.set_step_goal(conn, args.user_id, None if args.default else args.steps)
        goal = accounts.step_goal(conn, args.user_id)
    default = int(DEFAULT_STEP_GOAL)
    print(f"{args.user_id}: {goal or default:,} steps a day{'' if goal else ' (the default)'}")
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = commands.add_parser("users", help="people whose data this is").add_subparsers(
        dest="users_command", required=True
    )
    add = users.add_parser("add", help="add a user")
    add.add_argument("user_id")
    add.add_argument("--timezone", default="UTC", help="home time zone, an IANA name (default UTC)")
    add.add_argument("--name", help="display name")
    add.set_defaults(handler=cmd_add)
    priority = users.add_parser(
        "priority", help="show or set which device class wins where sources overlap (highest first)"
    )
    priority.add_argument("user_id")
    priority.add_argument("classes", nargs="*", help="e.g. phone watch: classes left out follow in the default order")
    priority.add_argument("--default", action="store_true", help="go back to the default order")
    priority.set_defaults(handler=cmd_priority)
    goal = users.add_parser("goal", help="show or set the daily step goal the insights use")
    goal.add_argument("user_id")
    goal.add_argument("--steps", type=int, help="steps a day")
    goal.add_argument("--default", action="store_true", help="go back to the catalogue's goal")
    goal.set_defaults(handler=cmd_goal)
