"""The catalogue is the only list of metrics and sleep stages: the pipeline and the API take names, kinds and stage
sets from ``pipeline/catalog.py`` (or have them rendered into their SQL from it), never write them out again. Reads
the source, no database."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from pipeline.catalog import (
    ASLEEP_STAGES,
    CUMULATIVE_METRICS,
    GENERIC_ASLEEP_STAGE,
    IN_BED_STAGE,
    METRICS,
    SLEEP_METRIC,
    SLEEP_STAGES,
    Kind,
)
from pipeline.samples.io import sql

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("pipeline", "api")
# Where a metric or stage name may be written out, and why.
EXCEPTIONS = {
    "pipeline/catalog.py": "the catalogue itself",
    "pipeline/ingest/apple": "the Apple reader maps HealthKit's type identifiers and sleep values onto the catalogue's "
    "names: the one place where Apple's vocabulary meets ours",
    "pipeline/synthetic/": "the synthetic data plays the devices and the exports: it writes samples in the vocabulary "
    "a device or an Apple export uses, as the data the pipeline is tested with",
    "pipeline/infra/distribution.py": "names the schemas raw, core and marts; the schema core shares its name with a "
    "sleep stage, and the module holds no metric or stage",
}
STAGES = set(SLEEP_STAGES)
_WORD = re.compile(r"[A-Za-z_]+")
_QUOTED = re.compile(r"'([^']*)'")


def _excepted(path: str) -> bool:
    return any(path.startswith(prefix) for prefix in EXCEPTIONS)


def _docstrings(tree: ast.AST) -> set[int]:
    kinds = ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
    nodes = [n for n in ast.walk(tree) if isinstance(n, kinds)]
    return {
        id(n.body[0].value)
        for n in nodes
        if n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)
    }


def names_in_python(source: str) -> list[tuple[int, str]]:
    """(line, name) of each metric or stage name in a string literal (f-strings' text included, docstrings and
    comments not): a metric name anywhere in the text (they are upper-case words, e.g. in SQL), a stage name as the
    whole literal or quoted inside it."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or id(node) in docstrings:
            continue
        text = node.value
        words = set(_WORD.findall(text)) & set(METRICS)
        stages = ({text} | set(_QUOTED.findall(text)) | set(re.findall(r'"([^"]*)"', text))) & STAGES
        found += [(node.lineno, name) for name in sorted(words | stages)]
    return sorted(found)


def names_in_sql(source: str) -> list[tuple[int, str]]:
    """(line, name) of each metric or stage name in a SQL string literal (comments left out)."""
    found = []
    for number, line in enumerate(source.splitlines(), start=1):
        code = line.split("--", 1)[0]
        found += [(number, text) for text in _QUOTED.findall(code) if text in METRICS or text in STAGES]
    return found


def test_no_module_writes_out_a_metric_name_or_a_sleep_stage() -> None:
    found = []
    for package in SCANNED:
        for path in sorted((ROOT / package).rglob("*")):
            relative = path.relative_to(ROOT).as_posix()
            if path.suffix not in (".py", ".sql") or ".venv" in path.parts or _excepted(relative):
                continue
            source = path.read_text(encoding="utf-8")
            names = names_in_python(source) if path.suffix == ".py" else names_in_sql(source)
            found += [f"{relative}:{line}: {name}" for line, name in names]
    assert found == [], "take these from pipeline/catalog.py (SQL: a placeholder filled by io.sql)"


def test_the_scan_sees_names_in_code_and_sql_but_not_in_docstrings_or_comments() -> None:
    python = '''"""Sums STEPS."""
import x
CUMULATIVE = ["STEPS", "DISTANCE"]  # WEIGHT
QUERY = f"SELECT 1 WHERE metric <> 'SLEEP_ANALYSIS' AND stage IN ('asleep', 'core') AND x = {x}"
LAYER = "in_bed"
SCHEMA = "core.slices"
'''
    assert sorted(names_in_python(python)) == [
        (3, "DISTANCE"),
        (3, "STEPS"),
        (4, "SLEEP_ANALYSIS"),
        (4, "asleep"),
        (4, "core"),
        (5, "in_bed"),
    ]
    query = "-- 'WEIGHT' in a comment\nSELECT 1 FROM core.slices WHERE metric = 'WEIGHT' AND stage = 'rem'"
    assert names_in_sql(query) == [(2, "WEIGHT"), (2, "rem")]


def test_the_names_the_code_treats_apart_are_the_catalogues() -> None:
    assert METRICS[SLEEP_METRIC].kind == Kind.INTERVAL
    assert [m.name for m in METRICS.values() if m.kind == Kind.INTERVAL] == [SLEEP_METRIC]
    assert IN_BED_STAGE in SLEEP_STAGES and IN_BED_STAGE not in ASLEEP_STAGES
    assert GENERIC_ASLEEP_STAGE in ASLEEP_STAGES and ASLEEP_STAGES < STAGES
    assert set(CUMULATIVE_METRICS) == {"STEPS", "DISTANCE", "ACTIVE_ENERGY"}


def test_the_sql_models_get_the_catalogues_lists() -> None:
    hourly, daily = sql("hourly"), sql("daily")
    assert "s.stage IN ('asleep', 'core', 'deep', 'rem')" in hourly
    assert "s.metric <> 'SLEEP_ANALYSIS'" in hourly
    assert "('WEIGHT', 'latest')" in hourly and "('STEPS', 'sum')" in daily
    assert "/*" not in hourly and "/*" not in daily
    check = sql("check_cumulative_hours_sum_to_kept_slices", {"run partitions of t": "", "tolerance": "1e-06"})
    assert check.count("t.metric IN ('STEPS', 'DISTANCE', 'ACTIVE_ENERGY')") == 2
