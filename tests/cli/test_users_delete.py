"""``healthpipe users delete``: asks for the user id again unless ``--yes``, erases nothing on any other answer (or
none: stdin closed), and prints what it removed table by table; an unknown user is an error (exit 2)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from pipeline import cli
from pipeline.infra.database import create_warehouse_engine, psycopg_connection
from tests.support.helpers import land_samples, new_user

SAMPLES = [
    ("STEPS", 800, "count", None, "2024-05-01 08:00", "2024-05-01 08:10", "Watch", "watch"),
    ("STEPS", 300, "count", None, "2024-05-01 09:00", "2024-05-01 09:10", "Watch", "watch"),
]


def exists(url: URL, user: str) -> bool:
    engine = create_warehouse_engine(url)
    try:
        with psycopg_connection(engine) as conn:
            return conn.execute("SELECT 1 FROM app.users WHERE user_id = %s", (user,)).fetchone() is not None
    finally:
        engine.dispose()


def test_it_asks_to_repeat_the_user_id_and_erases_only_then(
    warehouse_url: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HEALTHPIPE_DAGSTER_HOME", str(tmp_path / "dagster_home"))
    engine = create_warehouse_engine(warehouse_url)
    user = new_user(engine)
    land_samples(engine, user, SAMPLES)
    engine.dispose()

    for answer in ("yes\n", "", f"{user}x\n"):  # not the id; stdin closed; another id
        monkeypatch.setattr("sys.stdin", io.StringIO(answer))
        assert cli.main(["users", "delete", user]) == 1
        assert "not erased" in capsys.readouterr().err
        assert exists(warehouse_url, user)

    monkeypatch.setattr("sys.stdin", io.StringIO(f"{user}\n"))
    assert cli.main(["users", "delete", user]) == 0
    out = capsys.readouterr().out
    assert not exists(warehouse_url, user)
    assert out.splitlines()[:5] == [  # 2 samples, their batch, the data version the landing advanced, the user
        f"{user} erased (erasure 1): 5 rows from",
        f"  {'app.ingest_batches':<32} {1:>10}",
        f"  {'app.user_data_versions':<32} {1:>10}",
        f"  {'app.users':<32} {1:>10}",
        f"  {'raw.samples':<32} {2:>10}",
    ]
    assert "data key destroyed: no key held" in out

    assert cli.main(["users", "delete", user, "--yes"]) == 2
    assert f"no user '{user}'" in capsys.readouterr().err
