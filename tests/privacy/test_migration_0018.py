"""Migration 0018 on a database that already holds plain values: every value is encrypted, nothing is lost, and
the product reads them back."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

from sqlalchemy.engine import URL

from pipeline import accounts, profiles
from pipeline.infra.database import create_warehouse_engine, libpq_url, psycopg_connection
from pipeline.infra.migrations import migrate
from pipeline.privacy import UNATTRIBUTED, reads
from tests.privacy.test_encryption_at_rest import in_clear, pg_dump

_PLAIN = [
    """INSERT INTO app.users (user_id, display_name, given_name, family_name, gender, birth_date)
       VALUES ('anna', 'Anna Quillfeather', 'Anna', 'Quillfeather', 'female', '1990-01-02'), ('bob', NULL, NULL, NULL,
       NULL, NULL)""",
    """INSERT INTO app.devices (user_id, device_id, device_class, name)
       VALUES ('anna', 'w1', 'watch', 'Anna''s Wristvane')""",
    """INSERT INTO app.ingest_batches (user_id, source) VALUES ('anna', 'ndjson')""",
    """INSERT INTO raw.samples (identity, user_id, metric, value, unit, start_utc, end_utc, source_name, device_class,
                                metadata, batch_id)
       SELECT md5(i::text)::uuid, 'anna', 'STEPS', i, 'count',
              '2024-05-01 08:00+00'::timestamptz + i * interval '1 min',
              '2024-05-01 08:00+00'::timestamptz + i * interval '1 min', 'Phone', 'phone',
              CASE WHEN i % 2 = 0 THEN jsonb_build_object('secret', 'Glimmerwick' || i) END, 1
       FROM generate_series(1, 5) i""",
    """INSERT INTO raw.quarantine (batch_id, user_id, reason, payload) VALUES
       (1, 'anna', 'bad unit', '{"value": "Frobnitz"}'), (1, NULL, 'no user', '{"line": "Wobblecrest"}')""",
]


def test_existing_plain_values_are_encrypted_and_read_back(make_database: Callable[[], URL]) -> None:
    url = make_database()
    migrate(url, target=17)
    engine = create_warehouse_engine(url)
    try:
        with psycopg_connection(engine) as conn:
            for statement in _PLAIN:
                conn.execute(statement.encode())
        report = migrate(url)
        assert report.applied[0] == 18
        dump = pg_dump(url)
        clear = [
            "Anna Quillfeather",
            "Quillfeather",
            "Wristvane",
            "1990-01-02",
            "Glimmerwick",
            "Frobnitz",
            "Wobblecrest",
        ]
        assert [value for value in clear if in_clear(dump, value)] == []
        with psycopg_connection(engine) as conn:
            profile = profiles.get_profile(conn, "anna")
            empty = profiles.get_profile(conn, "bob")
            devices = accounts.list_devices(conn, "anna")
            metadata = reads.sample_metadata(conn, "anna")
            rejects = reads.quarantined(conn)
            values = conn.execute("SELECT count(*), sum(value) FROM raw.samples").fetchone()
            subjects = conn.execute(
                "SELECT coalesce(user_id, %s), count(*) FROM raw.sealed_chunks GROUP BY 1 ORDER BY 1", (UNATTRIBUTED,)
            ).fetchall()
    finally:
        engine.dispose()
    assert profile == profiles.Profile(
        "anna", "Anna Quillfeather", "Anna", "Quillfeather", "female", dt.date(1990, 1, 2)
    )
    assert empty == profiles.Profile("bob", None, None, None, None, None)
    assert [(d.device_id, d.name) for d in devices] == [("w1", "Anna's Wristvane")]
    assert sorted(json.loads(text)["secret"] for text in metadata.values()) == ["Glimmerwick2", "Glimmerwick4"]
    assert values == (5, 15)  # measures untouched
    assert [(r.user_id, r.reason, json.loads(r.payload)) for r in rejects] == [
        ("anna", "bad unit", {"value": "Frobnitz"}),
        (None, "no user", {"line": "Wobblecrest"}),
    ]
    # anna's metadata and her payload, each a chunk; the row naming no user under the shared key
    assert subjects == [(UNATTRIBUTED, 1), ("anna", 2)]
    assert libpq_url(url)  # the database stays usable: a second migrate applies nothing
    assert migrate(url).applied == ()
