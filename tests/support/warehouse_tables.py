"""What several Dagster tests do to a warehouse: land a synthetic dataset, and fingerprint the output tables."""

from __future__ import annotations

import psycopg
from sqlalchemy.engine import URL

from pipeline.infra.database import create_warehouse_engine, libpq_url, psycopg_connection
from pipeline.ingest.landing import split_for_landing
from pipeline.ingest.store import create_batch, finish_batch, land_chunk
from pipeline.samples.process import CORE_TABLES
from pipeline.synthetic.generator import SyntheticDataset
from pipeline.synthetic.load import load_accounts

TABLES = (*CORE_TABLES, "marts.hourly", "marts.daily")

Checksums = dict[tuple[str, str, str], str]  # (table, user, day) -> md5 of its rows


def checksums(url: URL, with_computed_at: bool = True) -> Checksums:
    """One md5 per table and user-day over its rows (as JSON, sorted); ``computed_at`` (a time stamp of when the
    row was written) is left out when comparing two different databases."""
    drop = "" if with_computed_at else " - 'computed_at'"
    result: Checksums = {}
    with psycopg.connect(libpq_url(url)) as conn:
        for table in TABLES:
            rows = conn.execute(
                f"""SELECT user_id, local_date::text, md5(string_agg(r, E'\\n' ORDER BY r))
                    FROM (SELECT user_id, local_date, (to_jsonb(t){drop})::text AS r FROM {table} t) s
                    GROUP BY 1, 2""".encode()
            ).fetchall()
            result.update({(table, str(u), str(d)): str(m) for u, d, m in rows})
    return result


def land(url: URL, dataset: SyntheticDataset, batches: slice) -> None:
    """Land ``dataset``'s arrival batches selected by ``batches`` (its users and devices first)."""
    engine = create_warehouse_engine(url)
    load_accounts(engine, dataset)
    with psycopg_connection(engine) as conn:
        for number, batch in list(enumerate(dataset.batches))[batches]:
            batch_id = create_batch(conn, None, "synthetic", f"arrival day {number}")
            finish_batch(conn, batch_id, land_chunk(conn, batch_id, split_for_landing(batch)))
    engine.dispose()
