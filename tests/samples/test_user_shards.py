"""The mode where the user dimension holds hash shards of users runs the same code to the same tables.

``HEALTHPIPE_USER_SHARDS`` is read when the partitions are defined (a deployment chooses it once), so the shard-mode
run is a child process (``tests/support/range_run.py``) with the variable set; the per-user run is in this process.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from pipeline.infra.migrations import migrate
from pipeline.samples.partitions import shard_of
from pipeline.synthetic.generator import SyntheticConfig, generate
from tests.support.range_run import materialize_range
from tests.support.warehouse_tables import checksums, land

pytestmark = pytest.mark.stack
ROOT = Path(__file__).resolve().parents[2]
USERS = ["u0001", "u0002", "u0003"]
FIRST, LAST = dt.date(2024, 3, 6), dt.date(2024, 3, 9)
SHARDS = 4


@pytest.mark.slow
def test_shard_mode_writes_the_same_tables_as_per_user_partitions(
    make_database: Callable[[], URL], monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = generate(SyntheticConfig(users=len(USERS), days=4, start=FIRST, seed=5))
    assert len({shard_of(u, SHARDS) for u in USERS}) >= 2  # the users really are spread over shards

    per_user_url, sharded_url = make_database(), make_database()
    for url in (per_user_url, sharded_url):
        migrate(url)
        land(url, dataset, slice(None))

    monkeypatch.setenv("HEALTHPIPE_DATABASE_URL", per_user_url.render_as_string(hide_password=False))
    assert materialize_range(USERS, FIRST, LAST)

    env = {
        **os.environ,
        "HEALTHPIPE_DATABASE_URL": sharded_url.render_as_string(hide_password=False),
        "HEALTHPIPE_USER_SHARDS": str(SHARDS),
    }
    child = subprocess.run(
        [sys.executable, "-m", "tests.support.range_run", ",".join(USERS), str(FIRST), str(LAST)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert child.returncode == 0, child.stdout[-3000:] + child.stderr[-3000:]
    assert "range run over" in child.stdout and "shard-" in child.stdout  # over shard partitions

    per_user = checksums(per_user_url, with_computed_at=False)
    sharded = checksums(sharded_url, with_computed_at=False)
    users_in_marts = {user for table, user, _ in per_user if table == "marts.daily"}
    assert users_in_marts == set(USERS)
    assert sharded == per_user
