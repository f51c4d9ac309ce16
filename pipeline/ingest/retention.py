"""``healthpipe db retention --before YYYY-MM``: detach the months of ``raw.samples`` before a month, keeping them.

Each month table before the cutoff (``raw.samples_YYYY_MM``, migration 0022) is detached from ``raw.samples`` and
moved, whole and unchanged, to the schema ``raw_archive``: nothing is deleted, and moving a month back is one
``ALTER TABLE ... SET SCHEMA raw`` and ``ATTACH PARTITION`` by hand. The cutoff is recorded (``raw.sample_retention``),
and from then on:

- samples starting before it do not land (they are quarantined, with the cutoff as the reason): their month is no
  longer in raw.samples, and a new table for it would hold a fraction of the month;
- the local days up to the cutoff's first day are not recomputed (`frozen_through`): their core and marts rows stay
  as they were last computed, since raw.samples no longer holds what they were computed from;
- every reader of raw.samples (the pipeline, the export, the read API) sees only the months still attached; the
  erasure walks every table with a ``user_id`` column, the archived months included.

Detaching and moving happen in one transaction with the cutoff, under the advisory lock that making month tables
takes (``raw.add_sample_months``). Running it again with the same (or an earlier) month detaches nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import pandas as pd
from psycopg import sql

from pipeline.infra.database import Connection

ARCHIVE_SCHEMA = "raw_archive"
MONTH_TABLES_LOCK = 0x5241_5753  # "RAWS": the lock of raw.add_sample_months (migration 0022)
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_MONTH_TABLE = re.compile(r"^samples_(\d{4})_(\d{2})$")


class RetentionError(ValueError):
    """The retention cannot be applied as asked; the message says why."""


@dataclass(frozen=True)
class DetachedMonth:
    month: dt.date  # its first day
    table: str  # schema.table where it now is
    rows: int


@dataclass(frozen=True)
class RetentionReport:
    before: dt.date  # the cutoff in force after the command
    detached: tuple[DetachedMonth, ...]  # by this run (empty: nothing was left to detach)
    earlier_cutoff: dt.date | None  # the cutoff recorded before


def parse_month(text: str, today: dt.date | None = None) -> dt.date:
    """``YYYY-MM`` -> the month's first day; refuses a malformed month and a month after the current one (UTC)."""
    match = _MONTH.match(text.strip())
    if match is None or not 1 <= int(match.group(2)) <= 12:
        raise RetentionError(f"--before wants a month as YYYY-MM (e.g. 2024-01), not {text!r}")
    month = dt.date(int(match.group(1)), int(match.group(2)), 1)
    current = (today or dt.datetime.now(dt.UTC).date()).replace(day=1)
    if month > current:
        raise RetentionError(
            f"--before {text} is after the current month ({current:%Y-%m}): it would detach months still landing"
        )
    return month


def retention_cutoff(conn: Connection) -> dt.date | None:
    """The first month still attached after `apply_retention`, or None when nothing was ever detached."""
    row = conn.execute("SELECT before FROM raw.sample_retention").fetchone()
    return row[0] if row else None  # type: ignore[return-value]


def frozen_through(conn: Connection) -> dt.date | None:
    """The last local day the pipeline no longer recomputes (the cutoff's first day: in a zone east of UTC it begins
    in the month before, whose samples are detached), or None."""
    return retention_cutoff(conn)


def recomputable(user_days: pd.DataFrame, frozen: dt.date | None) -> pd.DataFrame:
    """The (user_id, local_date) rows of ``user_days`` after ``frozen`` (`frozen_through`), all when None."""
    if frozen is None or user_days.empty:
        return user_days
    keep = pd.to_datetime(user_days["local_date"]) > pd.Timestamp(frozen)
    return user_days[keep.to_numpy()].reset_index(drop=True)


def _attached_months(conn: Connection) -> list[tuple[dt.date, str]]:
    rows = conn.execute(
        """SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = 'raw.samples'::regclass ORDER BY c.relname"""
    ).fetchall()
    months = []
    for (name,) in rows:
        match = _MONTH_TABLE.match(str(name))
        if match:
            months.append((dt.date(int(match.group(1)), int(match.group(2)), 1), str(name)))
    return months


def apply_retention(conn: Connection, before: dt.date) -> RetentionReport:
    """Detach every month of raw.samples before ``before`` into raw_archive and record the cutoff (it only moves
    forward: an earlier month than the recorded one changes nothing). ``conn`` in autocommit mode."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MONTH_TABLES_LOCK,))
        earlier = retention_cutoff(conn)
        cutoff = max(before, earlier) if earlier else before
        detached = []
        for month, name in _attached_months(conn):
            if month >= cutoff:
                continue
            table = sql.Identifier("raw", name)
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
            conn.execute(sql.SQL("ALTER TABLE raw.samples DETACH PARTITION {}").format(table))
            conn.execute(sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(table, sql.Identifier(ARCHIVE_SCHEMA)))
            archived = sql.Identifier(ARCHIVE_SCHEMA, name)
            conn.execute(
                sql.SQL("COMMENT ON TABLE {} IS {}").format(
                    archived,
                    sql.Literal(f"raw.samples of {month:%Y-%m} (UTC), detached by healthpipe db retention"),
                )
            )
            detached.append(DetachedMonth(month, f"{ARCHIVE_SCHEMA}.{name}", int(row[0]) if row else 0))  # type: ignore[call-overload]
        if earlier != cutoff:
            conn.execute(
                """INSERT INTO raw.sample_retention (before) VALUES (%s)
                   ON CONFLICT (only_row) DO UPDATE SET before = excluded.before, set_at = now()""",
                (cutoff,),
            )
    return RetentionReport(cutoff, tuple(detached), earlier)


def describe(report: RetentionReport) -> list[str]:
    """The command's lines: what was detached, how many rows each month holds, and what the cutoff means."""
    lines = [f"detached {m.month:%Y-%m}: {m.rows:,} rows, now {m.table}" for m in report.detached]
    if not report.detached:
        lines.append(f"nothing to detach: no month before {report.before:%Y-%m} is attached to raw.samples")
    if report.earlier_cutoff and report.earlier_cutoff >= report.before and report.detached == ():
        lines.append(f"(the cutoff stays {report.earlier_cutoff:%Y-%m}; it only moves forward)")
    lines.append(
        f"samples starting before {report.before:%Y-%m} are no longer landed (quarantined) or recomputed; "
        f"detached months stay in {ARCHIVE_SCHEMA} (docs/scaling.md, Partitioned raw store)"
    )
    return lines
