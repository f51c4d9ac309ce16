"""``healthpipe users``: the people whose data this is, and their source priority."""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from pipeline import accounts, profiles
from pipeline.cli.export import add_export_command
from pipeline.cli.warehouse import migrated_engine
from pipeline.infra.database import dagster_storage_url, psycopg_connection
from pipeline.infra.settings import Settings
from pipeline.insights.thresholds import DEFAULT_STEP_GOAL


def cmd_add(settings: Settings, args: argparse.Namespace) -> int:
    with psycopg_connection(migrated_engine(settings)) as conn:
        accounts.create_user(conn, args.user_id, args.timezone, args.name)
    print(f"user {args.user_id} added (home time zone {args.timezone})")
    return 0


def cmd_list(settings: Settings, args: argparse.Namespace) -> int:
    with psycopg_connection(migrated_engine(settings)) as conn:
        users = accounts.user_overview(conn)
    if not users:
        print("no users yet: healthpipe users add NAME (or healthpipe generate)", file=sys.stderr)
        return 0
    print(f"{'user':<16} {'home time zone':<22} {'samples':>12} {'days computed':<25} devices")
    for user in users:
        days = f"{user.first_day} to {user.last_day}" if user.first_day else "none"
        print(f"{user.user_id:<16} {user.home_timezone:<22} {user.landed_samples:>12,} {days:<25} {user.devices}")
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


# option -> profile field; an option given as '' clears the field
_PROFILE_OPTIONS = {
    "display_name": "display name",
    "given_name": "given name",
    "family_name": "family name",
    "gender": "gender",
    "birth_date": "birth date",
}


def _profile_changes(args: argparse.Namespace) -> dict[str, object]:
    changes: dict[str, object] = {}
    for field in _PROFILE_OPTIONS:
        value: str | None = getattr(args, field)
        if value is None:
            continue
        if value == "":
            changes[field] = None
        elif field == "birth_date":
            try:
                changes[field] = dt.date.fromisoformat(value)
            except ValueError:
                raise accounts.AccountError(f"birth date {value!r} is not a date (YYYY-MM-DD)") from None
        else:
            changes[field] = value
    return changes


def cmd_profile(settings: Settings, args: argparse.Namespace) -> int:
    changes = _profile_changes(args)
    with psycopg_connection(migrated_engine(settings)) as conn:
        profile = (
            profiles.update_profile(conn, args.user_id, changes)
            if changes
            else profiles.get_profile(conn, args.user_id)
        )
    if profile is None:
        raise accounts.AccountError(f"no user {args.user_id!r}")
    for field, label in _PROFILE_OPTIONS.items():
        value = getattr(profile, field)
        print(f"{label}: {'-' if value is None else value}")
    return 0


def cmd_delete(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.erasure.erase import CLI, erase_user  # loads Dagster's storage classes: only for this command

    if not args.yes:
        print(
            f"This erases {args.user_id} and everything held about them, for good: samples, marts, insights, scores, "
            "devices, API keys, share links, profile.",
            file=sys.stderr,
        )
        print(f"Type the user id ({args.user_id}) to confirm: ", end="", file=sys.stderr, flush=True)
        try:
            answer = input()
        except EOFError:
            answer = ""
        if answer.strip() != args.user_id:
            print("not erased (the answer did not repeat the user id; --yes skips the question)", file=sys.stderr)
            return 1
    engine = migrated_engine(settings)
    try:
        erasure = erase_user(
            engine,
            args.user_id,
            requested_by=CLI,
            dagster_storage=dagster_storage_url(settings, engine.url),
            dbt_home=settings.resolved_dagster_home / "dbt",
        )
    finally:
        engine.dispose()
    print(f"{args.user_id} erased (erasure {erasure.erasure_id}): {erasure.total_rows:,} rows from")
    for table, count in sorted(erasure.rows_removed.items()):
        print(f"  {table:<32} {count:>10,}")
    print(f"data key destroyed: {'yes' if erasure.data_key_destroyed else 'no key held'}")
    if erasure.dagster is not None:
        print(
            f"Dagster: {erasure.dagster.partition_keys} partition key, {erasure.dagster.events:,} asset events, "
            f"{erasure.dagster.check_results:,} check results removed"
        )
    print(
        f"recomputed without them: cohort statistics of {len(erasure.cohort_days)} days, "
        f"health scores of {erasure.days_rescored} days"
    )
    print("seconds: " + ", ".join(f"{phase} {took:.1f}" for phase, took in erasure.seconds.items()))
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
    listing = users.add_parser("list", help="every user: home time zone, landed samples, days computed, devices")
    listing.set_defaults(handler=cmd_list)
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
    profile = users.add_parser(
        "profile", help="show or set the names, gender and birth date the FHIR Patient export shows ('' clears one)"
    )
    profile.add_argument("user_id")
    profile.add_argument("--display-name", help="the name dashboards show")
    profile.add_argument("--given-name")
    profile.add_argument("--family-name")
    profile.add_argument("--gender", help=f"FHIR administrative gender: {', '.join(g.value for g in profiles.Gender)}")
    profile.add_argument("--birth-date", help="YYYY-MM-DD, from 1900-01-01, not in the future")
    profile.set_defaults(handler=cmd_profile)
    delete = users.add_parser(
        "delete",
        help="erase a user everywhere: every row, API keys, share links, Dagster partitions; cohort statistics "
        "and scores of their days recomputed (asks to confirm)",
    )
    delete.add_argument("user_id")
    delete.add_argument("--yes", action="store_true", help="do not ask to confirm")
    delete.set_defaults(handler=cmd_delete)
    add_export_command(users)
