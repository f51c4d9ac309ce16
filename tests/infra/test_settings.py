"""Settings in one place: every ``HEALTHPIPE_*`` variable is a field of ``pipeline/infra/settings.py``, read from the
environment or a ``.env`` file in the working directory, and no module reads one from ``os.environ`` on its own."""

from __future__ import annotations

import ast
import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.infra.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PARTITION_VARIABLES = ("HEALTHPIPE_PARTITIONS_START", "HEALTHPIPE_USER_SHARDS")
DOTENV = "HEALTHPIPE_PARTITIONS_START=2023-06-01\nHEALTHPIPE_USER_SHARDS=16\n"


def test_a_dotenv_file_sets_the_partition_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PARTITION_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    assert (Settings().partitions_start, Settings().user_shards) == (dt.date(2024, 1, 1), 0)  # the defaults
    (tmp_path / ".env").write_text(DOTENV, encoding="utf-8")
    settings = Settings()
    assert (settings.partitions_start, settings.user_shards) == (dt.date(2023, 6, 1), 16)
    monkeypatch.setenv("HEALTHPIPE_USER_SHARDS", "8")  # the environment wins over the file
    assert Settings().user_shards == 8


@pytest.mark.slow
def test_the_partitions_are_defined_from_a_dotenv_file(tmp_path: Path) -> None:
    """The partitions are built when Dagster imports the definitions: in a fresh process, from the .env file of the
    directory it starts in."""
    (tmp_path / ".env").write_text(DOTENV, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEALTHPIPE_")}
    script = (
        "from pipeline.samples.partitions import DAY_START, USER_SHARDS, partition_days, user_day_partitions\n"
        "users = user_day_partitions.get_partitions_def_for_dimension('user').get_partition_keys()\n"
        "print(DAY_START, USER_SHARDS, partition_days()[0], len(users), users[0])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["2023-06-01", "16", "2023-06-01", "16", "shard-000"]


def environ_reads(source: str) -> list[str]:
    """``HEALTHPIPE_*`` names read with ``os.environ[...]``, ``os.environ.get(...)`` or ``os.getenv(...)``."""
    reads = []
    for node in ast.walk(ast.parse(source)):
        name = None
        if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            name = node.slice
        elif isinstance(node, ast.Call) and ast.unparse(node.func) in ("os.environ.get", "os.getenv") and node.args:
            name = node.args[0]
        if isinstance(name, ast.Constant) and str(name.value).startswith("HEALTHPIPE_"):
            reads.append(str(name.value))
    return reads


def test_no_module_reads_a_healthpipe_variable_from_the_environment_itself() -> None:
    assert environ_reads('import os\nA = os.environ.get("HEALTHPIPE_X", "1")\nB = os.environ["HEALTHPIPE_Y"]') == [
        "HEALTHPIPE_X",
        "HEALTHPIPE_Y",
    ]
    found = {
        path.relative_to(ROOT).as_posix(): reads
        for package in ("pipeline", "api")
        for path in sorted((ROOT / package).rglob("*.py"))
        if (reads := environ_reads(path.read_text(encoding="utf-8")))
    }
    assert found == {}


def test_every_documented_variable_is_a_settings_field() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`HEALTHPIPE_([A-Z_]+)`", table))
    assert {"PARTITIONS_START", "USER_SHARDS"} <= documented
    assert {name.lower() for name in documented} <= set(Settings.model_fields)
