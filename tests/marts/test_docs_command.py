"""``healthpipe docs --no-serve``: dbt's static docs site of the marts, one self-contained page with the models'
descriptions and their lineage."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from pipeline.cli import main


def test_docs_builds_one_offline_page_with_descriptions_and_lineage(
    warehouse_url: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HEALTHPIPE_HOME", str(tmp_path))
    assert main(["docs", "--no-serve"]) == 0
    page = tmp_path / "dagster_home" / "dbt" / "docs" / "static_index.html"
    assert f"docs: {page}" in capsys.readouterr().out
    html = page.read_text(encoding="utf-8")
    # manifest and catalog are inlined in the page: no server or network needed to read it
    assert '"model.healthpipe_marts.weekly": {' in html
    assert '"description": "the Monday of the local ISO week"' in html
    # the lineage: weekly depends on the migration-owned marts.daily (and the dbt macros it uses)
    assert re.search(r'"nodes": \["source\.healthpipe_marts\.marts\.daily"[^\]]*\]', html)
    assert "DBT_ENV_SECRET" not in html
