"""Erasing a user on a real warehouse: four users with hand-written daily marts, the dbt marts built and the days
scored; the fourth user also has a profile, a device, keys, a share link, landed and quarantined samples, an
insight, a data version and a row in a table no migration knows (made here, with a foreign key that does not
cascade). After the erasure no table with a ``user_id`` column holds a row of theirs (walked through
information_schema, independently of the code's own walk), the others' rows are all there, and the shared rows
that counted them (cohort percentiles, health scores) are recomputed to the hand-computed values of three users."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from pipeline import data_version, profiles
from pipeline.accounts import create_api_key, register_device, set_source_priority
from pipeline.erasure.erase import CLI, Erasure, ErasureError, erase_user
from pipeline.infra.database import create_warehouse_engine, psycopg_connection
from pipeline.infra.migrations import migrate
from pipeline.scores.compute import score_range
from tests.support.helpers import land_samples, new_user
from tests.support.marts import build_full
from tests.support.read_api import insight_row

DAY, LONE_DAY = dt.date(2024, 5, 1), dt.date(2024, 5, 2)
# (steps, active energy kcal, resting heart rate bpm, SpO2 %) on DAY of users a, b, c and the erased d
VALUES = {
    "a": (1000, 100, 70, 94),
    "b": (3000, 300, 60, 96),
    "c": (5000, 500, 50, 98),
    "d": (21000, 900, 40, 99),
}
METRICS = ("STEPS", "ACTIVE_ENERGY", "RESTING_HEART_RATE", "OXYGEN_SATURATION")
LONE_STEPS = 7000  # d's steps on LONE_DAY, when nobody else has data


@dataclass(frozen=True)
class Erased:
    engine: Engine
    users: dict[str, str]  # a, b, c, d -> user id
    others_before: dict[str, int]  # schema.table -> rows of a, b and c before the erasure
    cohort_before: dict[tuple[dt.date, str], tuple[int, float, float, float]]
    scores_before: dict[str, tuple[float, int]]  # user id -> (score, cohort users) on DAY
    erasure: Erasure


def user_id_tables(conn: psycopg.Connection) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    """Every table with a user_id column, as information_schema lists them (views left out)."""
    rows = conn.execute(
        """SELECT c.table_schema, c.table_name FROM information_schema.columns c
           JOIN information_schema.tables t USING (table_schema, table_name)
           WHERE c.column_name = 'user_id' AND t.table_type = 'BASE TABLE'
             AND c.table_schema NOT IN ('pg_catalog', 'information_schema')
           ORDER BY 1, 2"""
    ).fetchall()
    return [(str(schema), str(name)) for schema, name in rows]


def rows_of(engine: Engine, users: list[str]) -> dict[str, int]:
    """Rows of ``users`` in every table with a user_id column (tables without any left out)."""
    found: dict[str, int] = {}
    with psycopg_connection(engine) as conn:
        for schema, name in user_id_tables(conn):
            query = sql.SQL("SELECT count(*) FROM {} WHERE user_id = ANY(%s)").format(sql.Identifier(schema, name))
            row = conn.execute(query, (users,)).fetchone()
            if row and row[0]:
                found[f"{schema}.{name}"] = int(row[0])  # type: ignore[call-overload]
    return found


def cohort(engine: Engine) -> dict[tuple[dt.date, str], tuple[int, float, float, float]]:
    with psycopg_connection(engine) as conn:
        rows = conn.execute(
            "SELECT local_date, metric, users, p5, p50, p95 FROM marts.cohort_daily WHERE metric = 'STEPS'"
        ).fetchall()
    return {(r[0], r[1]): (r[2], r[3], r[4], r[5]) for r in rows}  # type: ignore[misc]


def scores(engine: Engine) -> dict[str, tuple[float, int]]:
    with psycopg_connection(engine) as conn:
        rows = conn.execute(
            "SELECT user_id, score, cohort_users FROM marts.health_scores WHERE local_date = %s", (DAY,)
        ).fetchall()
    return {str(r[0]): (float(r[1]), int(r[2])) for r in rows}  # type: ignore[arg-type]


def daily_row(conn: psycopg.Connection, user: str, day: dt.date, metric: str, value: float) -> None:  # type: ignore[type-arg]
    conn.execute(
        """INSERT INTO marts.daily (user_id, local_date, metric, value, sum, count, min, max, flagged_count)
           VALUES (%s, %s, %s, %s, %s, 1, %s, %s, 0)""",
        (user, day, metric, value, value, value, value),
    )


def seed_the_erased_users_other_rows(engine: Engine, user: str, other: str) -> None:
    land_samples(
        engine,
        user,
        [
            ("STEPS", 800, "count", None, "2024-05-01 08:00", "2024-05-01 08:10", "Watch", "watch"),
            ("STEPS", 5, "furlong", None, "2024-05-01 09:00", "2024-05-01 09:10", "Watch", "watch"),
        ],
    )
    with psycopg_connection(engine) as conn:
        profiles.update_profile(conn, user, {"given_name": "Dora", "birth_date": dt.date(1980, 2, 3)})
        register_device(conn, user, "watch-1", "watch", "Dora's watch")
        set_source_priority(conn, user, ["phone", "watch"])
        create_api_key(conn, user, label="phone-app")
        conn.execute(
            """INSERT INTO app.shares (user_id, recipient, metrics, start_date, end_date, expires_at, code_hash)
               VALUES (%s, 'Dr. Jansen', '{STEPS}', %s, %s, now() + interval '7 days', %s)""",
            (user, DAY, LONE_DAY, uuid.uuid4().bytes * 2),
        )
        row = insight_row(user, "step_goal_streak", "active", "2024-05-01", "2024-05-02")
        conn.execute(
            """INSERT INTO marts.insights (insight_id, user_id, rule, severity, message, recommendation, numbers,
               first_evaluated_day, last_evaluated_day, status) VALUES (%(insight_id)s, %(user_id)s, %(rule)s,
               %(severity)s, %(message)s, %(recommendation)s, %(numbers)s, %(first)s, %(last)s, %(status)s)""",
            row,
        )
        data_version.advance(conn, [user])
        # a table of a later migration, whose foreign key does not cascade: emptied of the user before app.users
        conn.execute(
            """CREATE TABLE marts.future_things (user_id text NOT NULL REFERENCES app.users, note text);
               COMMENT ON TABLE marts.future_things IS 'a table the erasure code has never heard of'"""
        )
        conn.execute("INSERT INTO marts.future_things VALUES (%s, 'x'), (%s, 'y'), (%s, 'z')", (user, user, other))


@pytest.fixture(scope="module")
def erased(make_database: Callable[[], URL], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Erased]:
    url = make_database()
    migrate(url)
    engine = create_warehouse_engine(url)
    users = {name: new_user(engine, "Europe/Amsterdam", prefix=name) for name in VALUES}
    with psycopg_connection(engine) as conn, conn.transaction():
        for name, values in VALUES.items():
            for metric, value in zip(METRICS, values, strict=True):
                daily_row(conn, users[name], DAY, metric, value)
        daily_row(conn, users["d"], LONE_DAY, "STEPS", LONE_STEPS)
    seed_the_erased_users_other_rows(engine, users["d"], users["a"])
    dbt_home = tmp_path_factory.mktemp("dagster_home") / "dbt"
    build_full(url, dbt_home / "target")
    score_range(url, DAY, LONE_DAY)
    others = [users[name] for name in "abc"]
    before = Erased(engine, users, rows_of(engine, others), cohort(engine), scores(engine), None)  # type: ignore[arg-type]

    erasure = erase_user(engine, users["d"], requested_by=CLI, dagster_storage=None, dbt_home=dbt_home)

    yield Erased(engine, users, before.others_before, before.cohort_before, before.scores_before, erasure)
    engine.dispose()


def test_no_table_with_a_user_id_column_holds_a_row_of_the_erased_user(erased: Erased) -> None:
    assert rows_of(erased.engine, [erased.users["d"]]) == {}
    # what the erasure counted, table by table (d's rows as seeded)
    removed = erased.erasure.rows_removed
    assert removed["marts.daily"] == 5  # four metrics on DAY, steps on LONE_DAY
    assert removed["raw.samples"] == 1 and removed["raw.quarantine"] == 1  # the furlongs could not land
    assert removed["marts.future_things"] == 2
    assert removed["marts.health_scores"] == 1  # DAY (LONE_DAY: one user, too few to score)
    for table in ("app.users", "app.devices", "app.api_keys", "app.shares", "app.ingest_batches", "marts.insights"):
        assert removed[table] == 1, table
    assert removed["app.user_data_versions"] == 1 and removed["app.source_priority_changes"] == 1
    assert erased.erasure.data_key_destroyed is True  # d's device name was sealed under a key of d's
    assert list(erased.erasure.seconds) == ["rows", "dagster", "cohort", "scores"]


def test_every_other_users_rows_are_untouched(erased: Erased) -> None:
    others = [erased.users[name] for name in "abc"]
    after = rows_of(erased.engine, others)
    # the scores are rewritten (same count); everything else is as it was
    assert after == erased.others_before
    assert after["marts.daily"] == 12 and after["marts.future_things"] == 1


def test_the_cohort_percentiles_of_the_users_days_are_recomputed_without_them(erased: Erased) -> None:
    # DAY's steps: 1000, 3000, 5000, 21000 -> 1000, 3000, 5000 (percentile_cont: rank p x (n - 1), interpolated)
    assert erased.cohort_before[(DAY, "STEPS")] == pytest.approx((4, 1300.0, 4000.0, 18600.0))
    after = cohort(erased.engine)
    assert after[(DAY, "STEPS")] == pytest.approx((3, 1200.0, 3000.0, 4800.0))
    # LONE_DAY had only the erased user: no cohort left
    assert erased.cohort_before[(LONE_DAY, "STEPS")] == pytest.approx((1, 7000.0, 7000.0, 7000.0))
    assert (LONE_DAY, "STEPS") not in after
    assert erased.erasure.cohort_days == [DAY, LONE_DAY]


def test_the_health_scores_of_the_users_days_are_recomputed_among_the_three_left(erased: Erased) -> None:
    a, b, c, d = (erased.users[name] for name in "abcd")
    # before, with d in the cohort: b's activity (3000 - 1300) / 17300 and (300 - 130) / 710 -> 16.885; vitals
    # (68.5 - 60) / 27 and (96 - 94.3) / 4.55 -> 34.422; score (0.4 x 16.885 + 0.3 x 34.422) / 0.7
    assert erased.scores_before[b] == (pytest.approx(24.40095, abs=1e-4), 4)
    assert d in erased.scores_before
    # after: a, b and c are at the bottom, middle and top of every input -> 0, 50, 100 of a cohort of three
    assert scores(erased.engine) == {
        a: (pytest.approx(0.0, abs=1e-9), 3),
        b: (pytest.approx(50.0, abs=1e-9), 3),
        c: (pytest.approx(100.0, abs=1e-9), 3),
    }
    assert erased.erasure.days_rescored == 2
    with psycopg_connection(erased.engine) as conn:
        scored = conn.execute("SELECT local_date, scored_users FROM marts.health_score_days ORDER BY 1").fetchall()
    assert scored == [(DAY, 3), (LONE_DAY, 0)]


def test_the_audit_row_counts_what_went_and_names_no_one(erased: Erased) -> None:
    with psycopg_connection(erased.engine) as conn:
        rows = conn.execute(
            """SELECT requested_by, rows_removed, data_key_destroyed, days_recomputed, recomputed_at IS NOT NULL,
                      to_jsonb(e)::text FROM app.erasures e"""
        ).fetchall()
    ((requested_by, removed, destroyed, days, recomputed, whole),) = rows
    assert (requested_by, destroyed, days, recomputed) == ("cli", True, 2, True)
    assert removed == erased.erasure.rows_removed
    assert erased.users["d"] not in whole and "Dora" not in whole


def test_erasing_someone_unknown_erases_nothing_and_records_nothing(erased: Erased, tmp_path: Path) -> None:
    with pytest.raises(ErasureError, match="no user"):
        erase_user(erased.engine, "nobody_here", requested_by=CLI, dagster_storage=None, dbt_home=tmp_path)
    with psycopg_connection(erased.engine) as conn:
        assert conn.execute("SELECT count(*) FROM app.erasures").fetchone() == (1,)
