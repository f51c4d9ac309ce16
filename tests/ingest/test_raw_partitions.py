"""raw.samples partitioned by UTC month (migration 0022): the migration moves every landed row, a user-day's load
reads only its months, and `healthpipe db retention` detaches old months without deleting a row.

The data is the synthetic generator's: two users from 2024-03-28 to 2024-06-01 (four months), landed batch by batch
through the landing code."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from sqlalchemy.engine import URL

from pipeline.cli import main
from pipeline.erasure.erase import CLI, erase_user
from pipeline.infra.database import create_warehouse_engine, libpq_url, psycopg_connection
from pipeline.infra.migrations import migrate
from pipeline.ingest.landing import split_for_landing
from pipeline.ingest.retention import RetentionError, apply_retention, frozen_through, parse_month, recomputable
from pipeline.ingest.store import create_batch, finish_batch, land_chunk
from pipeline.samples.io import PARTITIONS_TABLE, load_window_sql
from pipeline.samples.runner import deduplicate_user_days
from pipeline.synthetic.config import SyntheticConfig
from pipeline.synthetic.generator import SyntheticDataset, generate
from pipeline.synthetic.load import load_dataset
from tests.support.helpers import land_samples, new_user

CONFIG = SyntheticConfig(users=2, days=66, start=dt.date(2024, 3, 28), seed=5)
MONTHS = ["2024_03", "2024_04", "2024_05", "2024_06"]
# what the landing of 0021's code base needs of 0022 to run on the schema before it: lent for the load, then dropped
LENT = """CREATE TABLE raw.sample_retention (only_row boolean PRIMARY KEY DEFAULT true, before date NOT NULL);
CREATE FUNCTION raw.add_sample_months(date[]) RETURNS integer LANGUAGE sql AS 'SELECT 0'"""
# every column of every row, in key order: equal before and after means no row lost, added or changed
FINGERPRINT = """SELECT count(*), md5(string_agg(concat_ws('|', identity, user_id, metric, value, unit, stage,
    start_utc, end_utc, timezone, source_name, device_class, source_app, device, external_id, batch_id, landed_at,
    metadata_chunk, metadata_slot), ',' ORDER BY user_id, start_utc, identity)) FROM {table}"""
MONTH_COUNTS = """SELECT to_char(start_utc AT TIME ZONE 'UTC', 'YYYY_MM'), count(*) FROM raw.samples GROUP BY 1
    ORDER BY 1"""


@pytest.fixture(scope="module")
def dataset() -> SyntheticDataset:
    return generate(CONFIG)


def fingerprint(conn: psycopg.Connection[tuple[object, ...]], table: str = "raw.samples") -> tuple[object, ...]:
    row = conn.execute(FINGERPRINT.format(table=table).encode()).fetchone()
    assert row is not None
    return tuple(row)


def partitions(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, int]:
    """raw.samples' partitions -> rows each."""
    names = [
        str(r[0])
        for r in conn.execute(
            """SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               WHERE i.inhparent = 'raw.samples'::regclass ORDER BY 1"""
        )
    ]
    return {name: int(conn.execute(f"SELECT count(*) FROM raw.{name}").fetchone()[0]) for name in names}  # type: ignore[index]


def test_0022_moves_every_row_into_its_month(make_database: Callable[[], URL], dataset: SyntheticDataset) -> None:
    url = make_database()
    migrate(url, target=21)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(LENT)
    engine = create_warehouse_engine(url)
    landed = load_dataset(engine, dataset).landed
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("DROP TABLE raw.sample_retention; DROP FUNCTION raw.add_sample_months(date[])")
        assert conn.execute("SELECT relkind FROM pg_class WHERE oid = 'raw.samples'::regclass").fetchone() == ("r",)
        before = fingerprint(conn)
        by_month = dict(conn.execute(MONTH_COUNTS).fetchall())

    assert migrate(url, target=22).applied == (22,)

    with psycopg.connect(libpq_url(url)) as conn:
        assert before[0] == landed > 150_000
        assert fingerprint(conn) == before
        assert conn.execute(
            "SELECT partstrat FROM pg_partitioned_table WHERE partrelid = 'raw.samples'::regclass"
        ).fetchone() == ("r",)
        assert partitions(conn) == {f"samples_{m}": by_month[m] for m in MONTHS}
        assert to_regclass(conn, "raw.samples_unpartitioned") is None
        # every month table has the parent's indexes (key, batch BRIN, the neighbour metrics' partial index)
        indexes = conn.execute(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = 'raw' AND tablename = 'samples_2024_04'"
        ).fetchone()
        assert indexes == (3,)
    # a repeat of the whole dataset lands nothing: the key still refuses every repeat, across months
    assert load_dataset(engine, dataset).landed == 0
    engine.dispose()


def to_regclass(conn: psycopg.Connection[tuple[object, ...]], name: str) -> object:
    row = conn.execute("SELECT to_regclass(%s)::text", (name,)).fetchone()
    return row[0] if row else None


def plan_tables(url: URL, user_days: pd.DataFrame) -> list[str]:
    """The month tables in the plan of the pipeline's load of ``user_days`` (its query, on the run's staged
    partitions: a temporary table, as `stage_partitions` makes it), in plan order."""
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute(f"CREATE TEMP TABLE {PARTITIONS_TABLE} (user_id text, local_date date)")
        with conn.cursor().copy(f"COPY {PARTITIONS_TABLE} FROM STDIN") as copy:
            for row in user_days.itertuples(index=False):
                copy.write_row(tuple(row))
        conn.execute(f"ANALYZE {PARTITIONS_TABLE}")
        plan = [str(r[0]) for r in conn.execute(("EXPLAIN " + load_window_sql(user_days)).encode())]
    return re.findall(r"on (samples_\d{4}_\d{2})", "\n".join(plan))


def test_a_user_days_load_reads_only_its_months(warehouse_url: URL, dataset: SyntheticDataset) -> None:
    engine = create_warehouse_engine(warehouse_url)
    load_dataset(engine, dataset)
    engine.dispose()
    user = str(dataset.users["user_id"].iloc[0])
    # 20 May: its window (18-23 May) is in May; body metrics' neighbours 14 days further (4 May - 6 June)
    tables = plan_tables(warehouse_url, pd.DataFrame({"user_id": [user], "local_date": [dt.date(2024, 5, 20)]}))
    assert set(tables) == {"samples_2024_05", "samples_2024_06"}
    assert tables[0] == "samples_2024_05" and tables.count("samples_2024_05") == 2  # one in each branch
    # two days of April of both users: April, and the neighbours' end of March and start of May
    both = pd.DataFrame(
        [(u, d) for u in dataset.users["user_id"] for d in (dt.date(2024, 4, 10), dt.date(2024, 4, 11))],
        columns=["user_id", "local_date"],
    )
    assert set(plan_tables(warehouse_url, both)) == {"samples_2024_03", "samples_2024_04"}


def daily_results(url: URL) -> list[tuple[object, ...]]:
    with psycopg.connect(libpq_url(url)) as conn:
        return conn.execute(
            """SELECT user_id, local_date, raw_rows, rejected, accepted, exact_duplicates FROM core.partition_stats
               ORDER BY 1, 2"""
        ).fetchall()


def test_retention_detaches_old_months_keeps_every_row_and_the_pipeline_runs_on(
    warehouse_url: URL, dataset: SyntheticDataset, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = create_warehouse_engine(warehouse_url)
    load_dataset(engine, dataset)
    users = list(dataset.users["user_id"])
    late = pd.DataFrame([(u, dt.date(2024, 5, d)) for u in users for d in (20, 21)], columns=["user_id", "local_date"])
    deduplicate_user_days(warehouse_url, late)
    computed = daily_results(warehouse_url)
    with psycopg.connect(libpq_url(warehouse_url)) as conn:
        whole = fingerprint(conn)
        by_month = dict(conn.execute(MONTH_COUNTS).fetchall())

    assert main(["db", "retention", "--before", "2024-05"]) == 0
    out = capsys.readouterr().out
    assert f"detached 2024-03: {by_month['2024_03']:,} rows, now raw_archive.samples_2024_03" in out
    assert f"detached 2024-04: {by_month['2024_04']:,} rows, now raw_archive.samples_2024_04" in out

    with psycopg.connect(libpq_url(warehouse_url)) as conn:
        assert partitions(conn) == {f"samples_{m}": by_month[m] for m in ("2024_05", "2024_06")}
        archived = conn.execute(
            """SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw_archive' ORDER BY 1"""
        ).fetchall()
        assert archived == [("samples_2024_03",), ("samples_2024_04",)]
        # nothing deleted: the attached months and the archive together hold every row, unchanged
        everything = """(SELECT * FROM raw.samples UNION ALL SELECT * FROM raw_archive.samples_2024_03
                          UNION ALL SELECT * FROM raw_archive.samples_2024_04) s"""
        assert fingerprint(conn, everything) == whole
        assert frozen_through(conn) == dt.date(2024, 5, 1)  # type: ignore[arg-type]

    # again, or with an earlier month: a no-op
    assert main(["db", "retention", "--before", "2024-05"]) == 0
    assert main(["db", "retention", "--before", "2024-02"]) == 0
    out = capsys.readouterr().out
    assert "detached 20" not in out and out.count("nothing to detach") == 2 and "the cutoff stays 2024-05" in out
    with psycopg.connect(libpq_url(warehouse_url)) as conn:
        assert partitions(conn) == {f"samples_{m}": by_month[m] for m in ("2024_05", "2024_06")}

    # later days compute exactly as before from the months still attached
    deduplicate_user_days(warehouse_url, late)
    assert daily_results(warehouse_url) == computed
    # days up to the cutoff's first day are no longer recomputed
    days = pd.DataFrame(
        {"user_id": users[0], "local_date": [dt.date(2024, 4, 30), dt.date(2024, 5, 1), late.iloc[0, 1]]}
    )
    assert list(recomputable(days, dt.date(2024, 5, 1))["local_date"]) == [dt.date(2024, 5, 20)]

    # a sample of a detached month is quarantined (its month stays detached), a later one lands
    user = users[0]
    rows = pd.DataFrame(
        {
            "user_id": user,
            "metric": "STEPS",
            "value": [11.0, 12.0],
            "unit": "count",
            "start": ["2024-04-03T08:00:00Z", "2024-06-01T08:00:00Z"],
            "end": ["2024-04-03T08:10:00Z", "2024-06-01T08:10:00Z"],
            "source_name": "Late phone",
            "device_class": "phone",
        }
    )
    with psycopg_connection(engine) as conn:
        batch = create_batch(conn, user, "test", "late samples")
        counts = land_chunk(conn, batch, split_for_landing(rows))
        finish_batch(conn, batch, counts)
        reasons = conn.execute("SELECT reason FROM raw.quarantine WHERE batch_id = %s", (batch,)).fetchall()
        assert to_regclass(conn, "raw.samples_2024_04") is None
    assert (counts.landed, counts.rejected) == (1, 1)
    assert reasons == [("starts before 2024-05, the raw retention cutoff (healthpipe db retention)",)]
    engine.dispose()


def test_the_erasure_reaches_detached_months_and_each_row_once(
    make_database: Callable[[], URL], tmp_path: Path
) -> None:
    url = make_database()
    migrate(url)
    engine = create_warehouse_engine(url)
    gone, kept = new_user(engine), new_user(engine)
    for user in (gone, kept):
        land_samples(
            engine,
            user,
            [
                ("STEPS", 100, "count", None, "2024-04-02 08:00", "2024-04-02 08:10", "Phone", "phone"),
                ("STEPS", 200, "count", None, "2024-04-03 08:00", "2024-04-03 08:10", "Phone", "phone"),
                ("STEPS", 300, "count", None, "2024-05-02 08:00", "2024-05-02 08:10", "Phone", "phone"),
            ],
        )
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        report = apply_retention(conn, dt.date(2024, 5, 1))
    assert [(m.table, m.rows) for m in report.detached] == [("raw_archive.samples_2024_04", 4)]

    erasure = erase_user(engine, gone, requested_by=CLI, dagster_storage=None, dbt_home=tmp_path)

    # the parent counts the rows of its partitions once; the detached month is a table of its own
    assert erasure.rows_removed["raw.samples"] == 1
    assert erasure.rows_removed["raw_archive.samples_2024_04"] == 2
    assert not any(name.startswith("raw.samples_") for name in erasure.rows_removed)
    with psycopg.connect(libpq_url(url)) as conn:
        left = conn.execute(
            """SELECT user_id = %s, count(*) FROM (SELECT user_id FROM raw.samples
                   UNION ALL SELECT user_id FROM raw_archive.samples_2024_04) s GROUP BY 1""",
            (gone,),
        ).fetchall()
    assert left == [(False, 3)]
    engine.dispose()


def test_a_bad_month_is_refused_with_what_to_write(capsys: pytest.CaptureFixture[str]) -> None:
    for text in ("2024-13", "2024/05", "May 2024", "24-05"):
        with pytest.raises(RetentionError, match="YYYY-MM"):
            parse_month(text)
    with pytest.raises(RetentionError, match="after the current month"):
        parse_month("2024-07", today=dt.date(2024, 6, 30))
    assert parse_month("2024-06", today=dt.date(2024, 6, 30)) == dt.date(2024, 6, 1)
    assert main(["db", "retention", "--before", "2024-13"]) == 2
    assert (
        "healthpipe: error: --before wants a month as YYYY-MM (e.g. 2024-01), not '2024-13'" in capsys.readouterr().err
    )
