from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from dagster import DagsterInstance, Definitions
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage
from pydantic import SecretStr
from sqlalchemy.engine import URL

from pipeline.definitions import defs
from pipeline.infra.dagster_home import dagster_environment, write_dagster_yaml
from pipeline.infra.database import dagster_storage_url, libpq_url
from pipeline.infra.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_the_instance_resolves_to_postgres_storage_in_schema_dagster(
    migrated_url: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(database_url=SecretStr(migrated_url.render_as_string(hide_password=False)))
    home = tmp_path / "dagster_home"
    write_dagster_yaml(home, max_concurrent_runs=3)
    for key, value in dagster_environment(home, dagster_storage_url(settings, migrated_url)).items():
        monkeypatch.setenv(key, value)

    instance = DagsterInstance.get()
    try:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert instance.run_coordinator.get_run_queue_config().max_concurrent_runs == 3
        assert instance.get_runs_count() == 0
    finally:
        instance.dispose()

    with psycopg.connect(libpq_url(migrated_url)) as conn:
        tables = {
            r[0]
            for r in conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'dagster'")
        }
        public = {
            r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        }
    assert {"runs", "event_logs", "jobs", "instigators"} <= tables
    assert "runs" not in public


def test_definitions_validate() -> None:
    Definitions.validate_loadable(defs)


@pytest.mark.slow
@pytest.mark.stack
def test_the_workspace_code_location_loads_with_the_dagster_cli(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", str(ROOT / "workspace.yaml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "DAGSTER_HOME": str(tmp_path), "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "healthpipe" in result.stdout + result.stderr
