"""The read API benchmark's warehouse: users x days of what the read routes read, generated set-based in SQL.

Written straight into the tables the routes read (no raw samples, no pipeline run): ``marts.daily`` (the catalogue's
metrics; weight every third day, body fat weekly, glucose for one user in ten), each night's session in
``core.sleep_sessions`` with its stage slices in ``core.slices`` (plus the phone's losing copy of one slice), a health
score per day, ~20 insight episodes per user over the year (the last three active), a finished device-sync batch per
user-day in ``app.ingest_batches`` (freshness), ``core.partition_stats`` per user-day, a data version per user. Each
table is one ``INSERT ... SELECT`` over ``generate_series``: at 1,000 users x 365 days that is ~6 million rows in
well under a minute, without moving them through Python. The API keys (one per user) are made afresh on every run
and only their hashes stored, as ``pipeline.accounts`` stores them.

A reusable warehouse (``seeded_database``) is kept between runs under a fixed name with a marker row saying what it
holds; it is seeded again when the sizes, this module's ``SEED_VERSION`` or the migrations differ.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy.engine import URL

from pipeline.accounts import KEY_PREFIX, hash_key
from pipeline.catalog import METRICS, SLEEP_METRIC
from pipeline.infra.database import libpq_url, warehouse_url
from pipeline.infra.migrations import discover_migrations, migrate
from pipeline.infra.settings import Settings
from pipeline.insights.rules import RULES
from pipeline.privacy.keystore import KEYSTORE_SUFFIX

SEED_VERSION = 3
FIRST_DAY = dt.date(2025, 1, 1)
TIME_ZONES = ("UTC", "Europe/Amsterdam", "America/New_York", "Asia/Tokyo")
SLEEP_STAGE_CYCLE = ("core", "deep", "core", "rem")
INSIGHTS_PER_USER = 20
ACTIVE_INSIGHTS_PER_USER = 3

# metric -> (typical daily value, spread either side, readings a day, every how many days, one user in how many)
PROFILES: dict[str, tuple[float, float, int, int, int]] = {
    "STEPS": (8_000, 5_000, 120, 1, 1),
    "DISTANCE": (6_000, 4_000, 120, 1, 1),
    "ACTIVE_ENERGY": (450, 250, 100, 1, 1),
    "HEART_RATE": (72, 10, 400, 1, 1),
    "RESTING_HEART_RATE": (60, 6, 1, 1, 1),
    "OXYGEN_SATURATION": (97, 1.5, 20, 1, 1),
    "BLOOD_GLUCOSE": (105, 20, 288, 1, 10),
    "WEIGHT": (75, 8, 1, 3, 1),
    "BODY_FAT": (24, 5, 1, 7, 1),
}
assert set(PROFILES) | {SLEEP_METRIC} == set(METRICS), "a profile for every metric of the catalogue"

MARKER = "bench_api_read.seed"


@dataclass(frozen=True)
class Seeded:
    """What a seeded warehouse holds: its users (in order), their keys (same order), its days and row counts."""

    users: list[str]
    keys: list[str]
    first_day: dt.date
    days: int
    rows: dict[str, int]

    @property
    def last_day(self) -> dt.date:
        return self.first_day + dt.timedelta(days=self.days - 1)

    @property
    def metrics(self) -> list[str]:
        """The metrics every user has on most days (those aggregates are asked for)."""
        return [name for name, profile in PROFILES.items() if profile[3] == 1 and profile[4] == 1] + [SLEEP_METRIC]


def user_ids(users: int) -> list[str]:
    return [f"bench{i:05d}" for i in range(users)]


_USERS = """
INSERT INTO app.users (user_id, home_timezone, display_name)
SELECT 'bench' || lpad(i::text, 5, '0'), (%(zones)s::text[])[1 + i %% cardinality(%(zones)s::text[])], NULL
FROM generate_series(0, %(users)s - 1) AS i
"""

_DAYS = "generate_series(%(first)s::date, %(first)s::date + %(days)s - 1, interval '1 day') AS g(ts)"

# Every non-sleep metric's rows in one statement: a level per user (hashtext of the id), noise per day.
_DAILY = f"""
INSERT INTO marts.daily (user_id, local_date, metric, value, sum, count, min, max, latest_value, latest_at,
                         flagged_count)
SELECT u.user_id, d.day, p.metric, v.value, CASE WHEN p.average THEN v.value * p.count ELSE v.value END,
       p.count, v.value * 0.2, v.value * 1.8, v.value, (d.day + time '20:00')::timestamptz, 0
FROM (SELECT ts::date AS day FROM {_DAYS}) d
-- each a subquery lateral on the one before, kept apart (OFFSET 0): days, then users, then metrics are the loops
-- from the outermost in, whatever join order the planner would prefer
CROSS JOIN LATERAL (SELECT user_id FROM app.users WHERE user_id LIKE 'bench%%' AND d.day IS NOT NULL OFFSET 0) u
CROSS JOIN LATERAL (
    SELECT * FROM unnest(%(metrics)s::text[], %(bases)s::float8[], %(spreads)s::float8[], %(counts)s::int[],
                         %(every)s::int[], %(one_in)s::int[], %(average)s::bool[])
                  AS p(metric, base, spread, count, every, one_in, average)
    WHERE u.user_id IS NOT NULL OFFSET 0) p
CROSS JOIN LATERAL (SELECT greatest(p.base + p.spread * (2 * random() - 1)
                                    + p.spread * 0.3 * ((abs(hashtext(u.user_id)) %% 100) / 50.0 - 1), 0)
                           AS value) v
WHERE (d.day - %(first)s::date + abs(hashtext(u.user_id))) %% p.every = 0
  AND abs(hashtext(u.user_id || 'share')) %% p.one_in = 0
UNION ALL
SELECT user_id, local_date, %(sleep)s, asleep_minutes, asleep_minutes, 1, asleep_minutes, asleep_minutes,
       asleep_minutes, session_end_utc, 0
FROM core.sleep_sessions WHERE user_id LIKE 'bench%%'
"""

_SLEEP_SESSIONS = f"""
INSERT INTO core.sleep_sessions (user_id, local_date, session_start_utc, session_end_utc, asleep_minutes,
                                 flagged_samples)
SELECT u.user_id, d.day, s.start, s.start + make_interval(mins => s.minutes), s.minutes, 0
FROM app.users u
CROSS JOIN LATERAL (SELECT ts::date AS day FROM {_DAYS}) d
CROSS JOIN LATERAL (SELECT (d.day - 1) + time '22:00' + make_interval(mins => (random() * 120)::int) AS start,
                           (360 + random() * 150)::int AS minutes) s
WHERE u.user_id LIKE 'bench%%'
ORDER BY d.day, u.user_id
"""

# The night cut in stage slices, each counted on the local (UTC) day it starts; slice 0 also lost by the phone.
_SLEEP_SLICES = """
INSERT INTO core.slices (user_id, local_date, metric, stage, slice_start_utc, slice_end_utc, local_hour,
                         hour_start_utc, value, source_name, device_class, identity, won)
SELECT n.user_id, (c.start AT TIME ZONE 'UTC')::date, %(metric)s,
       (%(cycle)s::text[])[1 + k %% cardinality(%(cycle)s::text[])], c.start, c.start + c.length,
       date_trunc('hour', c.start AT TIME ZONE 'UTC'), date_trunc('hour', c.start),
       n.asleep_minutes / %(slices)s, w.source, w.device, gen_random_uuid(), w.won
FROM core.sleep_sessions n
CROSS JOIN generate_series(0, %(slices)s - 1) AS k
CROSS JOIN LATERAL (SELECT n.session_start_utc + (n.session_end_utc - n.session_start_utc) * k / %(slices)s AS start,
                           (n.session_end_utc - n.session_start_utc) / %(slices)s AS length) c
CROSS JOIN LATERAL (VALUES ('Watch', 'watch', true), ('Phone', 'phone', false)) AS w(source, device, won)
WHERE n.user_id LIKE 'bench%%' AND (w.won OR k = 0)
"""

_SCORES = f"""
INSERT INTO marts.health_scores (user_id, local_date, score, activity, sleep, vitals, completeness, cohort_users,
                                 computed_at)
SELECT u.user_id, d.day, round((0.4 * a + 0.3 * s + 0.3 * v)::numeric, 1), a, s, v, 1, %(users)s,
       d.day + 1 + time '03:00'
FROM app.users u
CROSS JOIN LATERAL (SELECT ts::date AS day FROM {_DAYS}) d
CROSS JOIN LATERAL (SELECT 20 + random() * 80 AS a, 20 + random() * 80 AS s, 20 + random() * 80 AS v) c
WHERE u.user_id LIKE 'bench%%'
ORDER BY d.day, u.user_id
"""

_PARTITION_STATS = f"""
INSERT INTO core.partition_stats (user_id, local_date, raw_rows, rejected, accepted, exact_duplicates, computed_at)
SELECT u.user_id, d.day, 1300, 2, 1298, 0, d.day + 1 + time '02:00'
FROM app.users u CROSS JOIN LATERAL (SELECT ts::date AS day FROM {_DAYS}) d
WHERE u.user_id LIKE 'bench%%'
ORDER BY d.day, u.user_id
"""

# A day's sync of every user after the other: batch ids grow with time, as they do in production.
_BATCHES = f"""
INSERT INTO app.ingest_batches (user_id, source, source_ref, status, read_count, landed_count, started_at,
                                finished_at)
SELECT u.user_id, 'device_sync', 'watch-1', 'done', 1300, 1300, d.day + 1 + time '01:00', d.day + 1 + time '01:01'
FROM app.users u CROSS JOIN LATERAL (SELECT ts::date AS day FROM {_DAYS}) d
WHERE u.user_id LIKE 'bench%%'
ORDER BY d.day, u.user_id
"""

_INSIGHTS = """
INSERT INTO marts.insights (insight_id, user_id, rule, subject, severity, message, recommendation, numbers,
                            first_evaluated_day, last_evaluated_day, status, resolved_on)
SELECT md5(u.user_id || '|' || e.rule || '|' || e.first)::uuid, u.user_id, e.rule, '', 'medium',
       'A finding of ' || e.rule, 'What to do about it', '{"days": 3}',
       e.first, e.last, CASE WHEN e.active THEN 'active' ELSE 'resolved' END,
       CASE WHEN e.active THEN NULL ELSE e.last + 1 END
FROM app.users u
CROSS JOIN LATERAL (
    SELECT (%(rules)s::text[])[1 + j %% cardinality(%(rules)s::text[])] AS rule,
           %(first)s::date + j * %(spacing)s AS first,
           %(first)s::date + j * %(spacing)s + 3 AS last,
           j >= %(episodes)s - %(active)s AS active
    FROM generate_series(0, %(episodes)s - 1) AS j) e
WHERE u.user_id LIKE 'bench%%'
"""

_VERSIONS = """
INSERT INTO app.user_data_versions (user_id) SELECT user_id FROM app.users WHERE user_id LIKE 'bench%%'
ON CONFLICT DO NOTHING
"""

COUNTED = (
    "app.users",
    "marts.daily",
    "core.sleep_sessions",
    "core.slices",
    "marts.health_scores",
    "marts.insights",
    "app.ingest_batches",
    "core.partition_stats",
)


# Tables loaded without their indexes, rebuilt after the load (a sorted build beats ~6 million index insertions);
# those whose keys other tables reference (app.users, app.ingest_batches) keep theirs.
BULK_TABLES = ("marts.daily", "core.slices", "core.sleep_sessions", "marts.health_scores", "core.partition_stats")

_INDEXES = """
SELECT format('ALTER TABLE %%s DROP CONSTRAINT %%I', c.conrelid::regclass, c.conname),
       format('ALTER TABLE %%s ADD CONSTRAINT %%I %%s', c.conrelid::regclass, c.conname, pg_get_constraintdef(c.oid))
FROM pg_constraint c WHERE c.conrelid = ANY(%(tables)s::regclass[]) AND c.contype IN ('p', 'u')
UNION ALL
SELECT format('DROP INDEX %%s', i.indexrelid::regclass), pg_get_indexdef(i.indexrelid)
FROM pg_index i
WHERE i.indrelid = ANY(%(tables)s::regclass[])
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
"""


def seed(
    conn: psycopg.Connection[Any],
    users: int,
    days: int,
    slices_per_night: int = 8,
    timings: dict[str, float] | None = None,
) -> dict[str, int]:
    """Seed ``users`` x ``days`` from ``FIRST_DAY`` into a migrated, empty warehouse in one transaction; returns the
    row count of each table written. Rows go in a day of every user at a time, as the daily pipeline writes them, so
    a user's year is spread over the table as in production (the two largest tables by the order they are generated
    in, days the outer loop, not by a sort of millions of rows). ``timings`` receives the seconds of each step."""
    common = {"users": users, "days": days, "first": FIRST_DAY}
    profiles = list(PROFILES.items())
    spent = timings if timings is not None else {}

    def step(name: str, query: str, params: dict[str, Any] | None = None) -> None:
        started = time.perf_counter()
        conn.execute(query.encode(), params)
        spent[name] = spent.get(name, 0.0) + time.perf_counter() - started

    with conn.transaction():
        conn.execute(b"SET LOCAL work_mem = '256MB'")
        conn.execute(b"SET LOCAL maintenance_work_mem = '512MB'")
        indexes = conn.execute(_INDEXES.encode(), {"tables": list(BULK_TABLES)}).fetchall()
        for drop, _ in indexes:
            conn.execute(str(drop).encode())
        step("app.users", _USERS, common | {"zones": list(TIME_ZONES)})
        step("core.sleep_sessions", _SLEEP_SESSIONS, common)
        step(
            "marts.daily",
            _DAILY,
            common
            | {
                "metrics": [name for name, _ in profiles],
                "bases": [float(p[0]) for _, p in profiles],
                "spreads": [float(p[1]) for _, p in profiles],
                "counts": [p[2] for _, p in profiles],
                "every": [p[3] for _, p in profiles],
                "one_in": [p[4] for _, p in profiles],
                "average": [METRICS[name].strategy.value != "sum" for name, _ in profiles],
                "sleep": SLEEP_METRIC,
            },
        )
        step(
            "core.slices",
            _SLEEP_SLICES,
            {"metric": SLEEP_METRIC, "cycle": list(SLEEP_STAGE_CYCLE), "slices": slices_per_night},
        )
        step("marts.health_scores", _SCORES, common)
        step("core.partition_stats", _PARTITION_STATS, common)
        step("app.ingest_batches", _BATCHES, common)
        episodes = max(1, min(INSIGHTS_PER_USER, days // 5))
        step(
            "marts.insights",
            _INSIGHTS,
            {
                "first": FIRST_DAY,
                "rules": [rule.__name__ for rule in RULES],
                "episodes": episodes,
                "active": min(ACTIVE_INSIGHTS_PER_USER, episodes),
                "spacing": max(1, (days - 4) // episodes),
            },
        )
        step("app.user_data_versions", _VERSIONS)
        for _, create in indexes:
            step("indexes", str(create))
    for table in COUNTED:
        step("vacuum", f"VACUUM (ANALYZE) {table}")
    return row_counts(conn)


def row_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    counts = {}
    for table in COUNTED:
        row = conn.execute(f"SELECT count(*) FROM {table}".encode()).fetchone()
        counts[table] = int(row[0]) if row else 0
    return counts


def make_keys(conn: psycopg.Connection[Any], users: list[str]) -> list[str]:
    """One new key per user (every earlier benchmark key revoked by deletion), stored hashed as
    ``pipeline.accounts.create_api_key`` stores a key; returned in the users' order."""
    keys = [KEY_PREFIX + secrets.token_urlsafe(32) for _ in users]
    with conn.transaction():
        conn.execute("DELETE FROM app.api_keys WHERE label = 'benchmark'")
        with conn.cursor().copy(b"COPY app.api_keys (prefix, key_hash, user_id, label) FROM STDIN") as copy:
            for user, key in zip(users, keys, strict=True):
                copy.write_row((key[:11], hash_key(key), user, "benchmark"))
    return keys


def _marker(users: int, days: int, slices_per_night: int) -> dict[str, Any]:
    return {
        "users": users,
        "days": days,
        "first_day": FIRST_DAY.isoformat(),
        "slices_per_night": slices_per_night,
        "seed_version": SEED_VERSION,
        # the migrations' checksums, not only the last version: a migration replaced under the same number counts
        "schema": hashlib.sha256("".join(m.checksum for m in discover_migrations()).encode()).hexdigest()[:16],
    }


def _held(conn: psycopg.Connection[Any]) -> dict[str, Any] | None:
    found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (MARKER,)).fetchone()
    if not found or not found[0]:
        return None
    row = conn.execute(f"SELECT held FROM {MARKER}".encode()).fetchone()
    return dict(row[0]) if row else None


@contextmanager
def seeded_database(
    users: int, days: int, slices_per_night: int = 8, fresh: bool = False, keep: bool = True
) -> Iterator[tuple[URL, Seeded, float | None]]:
    """The benchmark's warehouse beside the configured one (database ``bench_api_read``), seeded unless it already
    holds these sizes; yields its URL, what it holds (with new keys) and the seconds seeding took (None: reused).
    ``keep`` False drops it afterwards."""
    admin = warehouse_url(Settings())
    name = "bench_api_read"
    url = admin.set(database=name)
    wanted = _marker(users, days, slices_per_night)
    with psycopg.connect(libpq_url(admin), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None
    held = None
    if exists and not fresh:
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            held = _held(conn)
    seconds = None
    if held is None or {k: held.get(k) for k in wanted} != wanted:
        with psycopg.connect(libpq_url(admin), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
            conn.execute(f'DROP DATABASE IF EXISTS "{name}{KEYSTORE_SUFFIX}" WITH (FORCE)'.encode())
            conn.execute(f'CREATE DATABASE "{name}"'.encode())
        migrate(url)
        started = time.perf_counter()
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            timings: dict[str, float] = {}
            rows = seed(conn, users, days, slices_per_night, timings)
            print("seeded: " + ", ".join(f"{name} {s:.1f} s" for name, s in timings.items()), flush=True)
            held = wanted | {"rows": rows}
            conn.execute(f"CREATE SCHEMA {MARKER.split('.')[0]}".encode())
            conn.execute(f"CREATE TABLE {MARKER} (held jsonb NOT NULL)".encode())
            conn.execute(f"INSERT INTO {MARKER} VALUES (%s)".encode(), (Jsonb(held),))
        seconds = time.perf_counter() - started
    try:
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            ids = user_ids(users)
            yield url, Seeded(ids, make_keys(conn, ids), FIRST_DAY, days, dict(held["rows"])), seconds
    finally:
        if not keep:
            with psycopg.connect(libpq_url(admin), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
                conn.execute(f'DROP DATABASE IF EXISTS "{name}{KEYSTORE_SUFFIX}" WITH (FORCE)'.encode())
