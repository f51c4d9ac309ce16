"""The README is the user's document, and docs/benchmarks.md is rendered from the recorded runs (no database)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from benchmarks import report

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
INSTALL = "python3.11 -m venv .venv && .venv/bin/pip install -q -c requirements.lock -e '.[dev]'"


def readme_block(name: str) -> str:
    """What .ci/run extracts: the lines between <!-- name --> and <!-- /name -->, without markers and fences."""
    block = README.split(f"<!-- {name} -->", 1)[1].split(f"<!-- /{name} -->", 1)[0]
    return "\n".join(line for line in block.splitlines() if line.strip() and not line.startswith(("<!--", "```")))


def test_readme_is_short_self_contained_and_keeps_the_two_commands() -> None:
    assert len(README) <= 16_384  # about 16k: a newcomer reads it in one sitting; detail goes to docs/
    assert "../shared" not in README and "shared/" not in README
    assert not re.search(r"session", README, re.IGNORECASE)
    assert readme_block("test-command") == f"{INSTALL} && .venv/bin/pytest"
    assert readme_block("main-command") == f"{INSTALL} && .venv/bin/healthpipe up"


def test_ci_extracts_the_same_test_command_from_the_readme() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    function = script[script.index("readme_command()") : script.index("test_command=")]
    result = subprocess.run(
        ["bash", "-c", f"{function}\nreadme_command test-command"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"{INSTALL} && .venv/bin/pytest"


def test_where_things_live_names_what_the_tree_holds() -> None:
    assert "docs/layout.md" in README.split("## Where things live", 1)[1].split("\n## ", 1)[0]
    section = (ROOT / "docs" / "layout.md").read_text(encoding="utf-8")
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    files = [Path(line) for line in tracked.splitlines()]
    top = {f.parts[0] for f in files if f.parts[0] not in {".gitignore", "README.md", ".ci"}}
    modules = {f.parts[1].removesuffix(".py") for f in files if f.parts[0] == "pipeline" and len(f.parts) > 1}
    migrations = [f for f in files if f.parent.name == "migrations" and f.suffix == ".sql"]
    assert len(migrations) >= 14
    # the README names the folder; each migration says what it does in its own opening comment
    undescribed = [f.name for f in migrations if not (ROOT / f).read_text(encoding="utf-8").startswith("-- ")]
    assert undescribed == []
    assert "migrations/" in section
    missing = sorted(
        [name for name in top if name not in section]
        + [f"pipeline/{m}" for m in modules - {"__init__"} if m not in section]
    )
    assert missing == []
    assert ".ci/run" in section and "docs/" in section and "benchmarks/" in section


def test_the_benchmarks_page_and_the_readme_figures_are_rendered_from_the_history() -> None:
    history = report.read_history(report.HISTORY)
    assert history, "the history holds the figures recorded so far"
    page = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    assert page == report.render(history, report.METHOD.read_text(encoding="utf-8"))
    assert f"<!-- performance -->\n{report.render_readme_block(history)}\n<!-- /performance -->" in README
    assert ".venv/bin/python -m benchmarks.report" in README
    for command in ("benchmarks.import_apple_export", "benchmarks.pipeline_end_to_end", "healthpipe backfill --wait"):
        assert command in readme_block("performance")


def test_the_imported_records_are_kept_and_marked() -> None:
    history = report.read_history(report.HISTORY)
    imported = [e for e in history if e["origin"] == "imported from earlier records"]
    assert len(imported) == 19
    assert {e["machine"]["summary"] for e in imported} == {"2-core, 24 GiB"}
    large = [e["import"]["large"]["records_per_s"] for e in imported if e.get("import")]
    assert large == [199_300, 192_700, 92_100, 187_400, 69_200, 182_221]
    pipeline = [e["pipeline"].get("samples_per_s") for e in imported if e.get("pipeline")]
    assert pipeline == [23_200, 213_700, 224_800, None, 170_200, 161_800, 184_400, 184_900]


def entry(date: str, records_per_s: int, samples_per_s: int, sizes: dict[str, int]) -> dict[str, object]:
    machine = {"summary": "8-core, 32 GiB", "cpu": "Test CPU", "postgresql": "18.1 (embedded)"}
    return {
        "date": date,
        "origin": "benchmarks.report",
        "commit": "abc1234",
        "machine": machine,
        "load_average": {"before": 0.5, "after": 1.25},
        "sizes": sizes,
        "import": {
            "small": {"records": 500_000, "file_mb": 129.0, "records_per_s": 150_000, "peak_rss_mb": 230.0},
            "large": {
                "records": 2_000_000,
                "file_mb": 516.0,
                "records_per_s": records_per_s,
                "import_records_per_s": 210_000,
                "peak_rss_mb": 310.4,
                "load_before": 0.5,
                "load_after": 0.75,
            },
            "peak_ratio": 1.35,
        },
        "pipeline": {
            "users": 50,
            "days": 60,
            "samples": 4_000_000,
            "floor_s": 10.0,
            "pipeline_s": 40.0,
            "samples_per_s": samples_per_s,
            "floor_ratio": 4.0,
        },
    }


def test_the_latest_run_at_the_documented_sizes_gives_the_figures_and_the_verdicts() -> None:
    documented = {"records": 2_000_000, "small": 500_000, "users": 50, "days": 60}
    history = [
        entry("2027-01-02T10:00:00+00:00", 120_000, 100_000, documented),
        entry("2027-01-01T10:00:00+00:00", 90_000, 80_000, documented),
        entry("2027-01-03T10:00:00+00:00", 5_000, 5_000, {"records": 20_000, "small": 5_000, "users": 3, "days": 5}),
    ]
    assert report.latest(history, "import", "large") is history[0]
    page = report.render(history, "## Method\n\ntext")
    latest = " ".join(page.split("## Latest figures", 1)[1].split("## Method", 1)[0].split())
    assert "120,000 records/s (import alone 210,000/s), peak 310 MB" in latest
    assert "Targets >= 100,000 records/s: met; < 300 MB: NOT met" in latest
    assert "100,000 samples/s (40.0 s), 4.0x the floor (10.0 s)" in latest
    assert "Targets >= 100,000 samples/s: met; <= 3x the floor: NOT met" in latest
    assert "2027-01-02 10:00 UTC, 8-core, 32 GiB, load 0.5 -> 1.2" in latest
    rows = page.split("### Import", 1)[1].split("### Pipeline", 1)[0]
    # oldest first, one row per export size; the quick check at reduced sizes is listed but never the latest
    assert rows.index("90,000") < rows.index("120,000") < rows.index("| 5,000 |")
    row = "| 2,000,000 records (516 MB) | 120,000 | 210,000 | 310 | 1.35 | 0.5 -> 0.8 | benchmarks.report (abc1234) |"
    assert row in rows
    assert "- 8-core, 32 GiB: Test CPU, PostgreSQL 18.1 (embedded)" in page


def test_a_run_is_appended_to_the_history_file(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "history.jsonl"
    first = entry("2027-01-01T10:00:00+00:00", 1, 1, {})
    report.append(path, first)
    report.append(path, {**first, "date": "2027-01-02T10:00:00+00:00"})
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["date"] for line in lines] == ["2027-01-01T10:00:00+00:00", "2027-01-02T10:00:00+00:00"]
    assert report.read_history(path)[0] == first


def test_the_machine_is_described() -> None:
    machine = report.machine("18.1 (embedded)")
    assert machine["cores"] == os.cpu_count()
    assert machine["summary"] == f"{os.cpu_count()}-core, {round(machine['memory_gib'])} GiB"
    assert machine["cpu"] and machine["os"] and machine["python"].startswith("3.")
    assert machine["postgresql"] == "18.1 (embedded)"


def test_a_readme_without_the_performance_markers_is_refused() -> None:
    with pytest.raises(ValueError, match="performance"):
        report.replace_block("# no markers\n", "performance", "x")
    replaced = report.replace_block("a\n<!-- p -->\nold\n<!-- /p -->\nb", "p", "new")
    assert replaced == "a\n<!-- p -->\nnew\n<!-- /p -->\nb"


def test_a_read_api_run_gives_its_figures_verdicts_and_table_rows() -> None:
    def scenario(name: str, mode: str, rps: float, p50: float, p99: float) -> dict[str, object]:
        offered = 300.0 if mode == "open" else None
        statuses = {"200": 3000, "429": 2} if name == "summary" else {"200": 3000}
        return (
            {"scenario": name, "mode": mode, "offered_rps": offered, "rps": rps, "p50_ms": p50, "p99_ms": p99}
            | {"statuses": statuses, "not_answered": 1 if name == "summary" else 0}
            | {"client_cpu_us": 120.0, "server_cpu_us": 900.0}
        )

    scenarios = [
        scenario("bare", "open", 300.0, 0.9, 3.5),
        scenario("summary", "open", 299.9, 4.2, 18.4),
        scenario("aggregates", "open", 150.0, 40.0, 95.0),
        scenario("cached", "open", 300.0, 1.5, 6.0),
        {"scenario": "revalidated", "skipped": "the summary answers carry no ETag"},
        scenario("bare capacity", "closed", 1200.0, 10.0, 30.0),
        scenario("summary capacity", "closed", 500.0, 30.0, 70.0),
    ]
    verdicts = {"summary_p99_ratio": 0.92, "summary_rate_reached": 1.0, "aggregates_p99_ratio": 4.75}
    verdicts |= {"aggregates_rate_reached": 0.5, "summary_capacity_share": 0.417, "cached_p50_ratio": 0.75}
    run = entry("2027-01-04T10:00:00+00:00", 1, 1, {"api_users": 1000, "api_days": 365, "api_seconds": 10})
    del run["import"], run["pipeline"]
    run["api"] = {"users": 1000, "days": 365, "rate": 300.0, "scenarios": scenarios, "verdicts": verdicts}
    page = report.render([run], "## Method\n\ntext")
    latest = " ".join(page.split("## Latest figures", 1)[1].split("## Method", 1)[0].split())
    assert (
        "1,000 users x 365 days, at 300 requests/s: bare p50 0.9 ms, p99 3.5 ms; summary p50 4.2 ms, p99 18.4 ms; "
        "aggregates p50 40.0 ms, p99 95.0 ms (150/s reached); cached p50 1.5 ms, p99 6.0 ms; "
        "capacity: bare 1,200/s, summary 500/s" in latest
    )
    assert (
        "Targets: p99 < 20 ms at 300/s: summary met, aggregates NOT met; summary capacity >= 0.5 of the bare route's "
        "(0.42): NOT met; cached p50 < 2 ms: met." in latest
    )
    rows = page.split("### Read API", 1)[1]
    assert "| 1,000 x 365 | summary | 300 | 300 | 4.20 | 18.40 | 3 | 120 | 900 |" in rows  # a 429 and one unanswered
    assert "revalidated" not in rows
    block = " ".join(report.render_readme_block([run]).split())
    assert (
        "Read API, 1,000 users x a year, 300 requests/s: summary p99 18.4 ms, aggregates p99 95.0 ms (150/s reached), "
        "cached p50 1.5 ms; summary capacity 0.42x the bare route's: `.venv/bin/python -m benchmarks.api_read`" in block
    )
