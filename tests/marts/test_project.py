"""How dbt is invoked: the connection from the settings' URL without a password on disk, and a manifest parsed once
per project version."""

from __future__ import annotations

from pathlib import Path

from pipeline.infra.database import with_driver
from pipeline.marts.project import dbt_environment, prepare_manifest, run_dbt

SECRET = "s3cret-Pa55word"


def test_the_profile_gets_the_connection_from_the_url_and_no_file_holds_the_password(tmp_path: Path) -> None:
    url = with_driver(f"postgresql://analyst:{SECRET}@db.example.com:6543/warehouse", "psycopg")
    env = dbt_environment(url)
    assert env["HEALTHPIPE_DBT_HOST"] == "db.example.com" and env["HEALTHPIPE_DBT_PORT"] == "6543"
    assert env["HEALTHPIPE_DBT_USER"] == "analyst" and env["HEALTHPIPE_DBT_DATABASE"] == "warehouse"
    assert env["DBT_ENV_SECRET_HEALTHPIPE_PASSWORD"] == SECRET
    run_dbt(["parse"], tmp_path, url)  # parses without connecting; writes manifest, partial parse and logs
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "manifest.json" for p in written) and any(p.suffix == ".log" for p in written)
    assert [p.name for p in written if SECRET.encode() in p.read_bytes()] == []


def test_the_manifest_is_parsed_once_per_project_version(tmp_path: Path) -> None:
    manifest = prepare_manifest(tmp_path)
    parsed_at = manifest.stat().st_mtime_ns
    assert prepare_manifest(tmp_path) == manifest and manifest.stat().st_mtime_ns == parsed_at
    (tmp_path / "manifest.fingerprint").write_text("an older project")
    assert prepare_manifest(tmp_path).stat().st_mtime_ns != parsed_at
