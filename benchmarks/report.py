"""Run the benchmarks, record the run with the machine it ran on, render docs/benchmarks.md from every recorded run.

    .venv/bin/python -m benchmarks.report [--records 2000000 --small 500000] [--users 50 --days 60]
                                          [--body-mb 1,4,10 --zip-mb 128,1024] [--api-users 1000 --api-days 365]
                                          [--api-seconds 10] [--only import|pipeline|hostile|api]
                                          [--note TEXT] [--render-only]

The defaults are the documented sizes (several minutes on a 2-core machine, most of it generating data). A run is
appended to docs/benchmarks/history.jsonl, one JSON object a line: the date, the machine (CPU model, cores, memory,
OS, Python, PostgreSQL version), the 1-minute load average before and after, the commit measured, and the figures
each benchmark's `main` returns. docs/benchmarks.md is then rendered from the whole history and the method text in
benchmarks/method.md, and the figures in README.md between the `<!-- performance -->` markers from the latest runs.

The pipeline at 10x (`--only pipeline --users 500 --days 60`, ~50M samples, an hour or more) is recorded as well.
Smaller sizes are a quick check: such a run is printed but not recorded unless --history names a file (so the
recorded history holds only runs at the documented sizes), e.g.

    .venv/bin/python -m benchmarks.report --users 3 --days 5 --records 20000 --small 5000 \\
        --history /tmp/history.jsonl --output /tmp/benchmarks.md --readme ''
    .venv/bin/python -m benchmarks.report --only hostile --body-mb 1,2 --zip-mb 8 --history /tmp/history.jsonl \\
        --output /tmp/benchmarks.md --readme ''

--render-only renders the page (and the README's figures) from the history without running anything.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HISTORY = ROOT / "docs" / "benchmarks" / "history.jsonl"
OUTPUT = ROOT / "docs" / "benchmarks.md"
README = ROOT / "README.md"
METHOD = Path(__file__).with_name("method.md")
COMMAND = ".venv/bin/python -m benchmarks.report"

# The documented sizes: the defaults of the benchmarks.
SIZES = {
    "records": 2_000_000,
    "small": 500_000,
    "users": 50,
    "days": 60,
    "body_mb": "1,4,10",
    "zip_mb": "128,1024",
    "api_users": 1000,
    "api_days": 365,
    "api_seconds": 10,
}
# Sizes documented before, still accepted for the records made at them (hostile bodies before the floor was measured).
EARLIER_SIZES = {"body_mb": ("1,10",)}
# Larger sizes recorded beside the documented ones: the pipeline at 10x (500 users x 60 days, ~50M samples).
SCALED_SIZES = {"users": (500,)}

# Targets.
IMPORT_RECORDS_PER_S = 100_000
IMPORT_PEAK_MB = 300
PIPELINE_SAMPLES_PER_S = 100_000
PIPELINE_FLOOR_RATIO = 3.0
PIPELINE_SCALED_TIME_RATIO = 11.0  # 10x the data in at most 11x the time
PIPELINE_SCALED_PEAK_RATIO = 1.2  # and at most 1.2x the peak memory
HOSTILE_PEAK_MB = 300
HOSTILE_PER_MB_SPREAD = 1.5
API_P99_MS = 20
API_RATE = 300
API_CAPACITY_SHARE = 0.5
API_CACHED_P50_MS = 2

Entry = dict[str, Any]


# -- the machine --------------------------------------------------------------------------------------------------


def _first(path: str, prefix: str, separator: str = ":") -> str | None:
    """The value of the first line of `path` starting with `prefix` (`name: value` or `NAME="value"`)."""
    try:
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                if line.startswith(prefix) and separator in line:
                    return line.split(separator, 1)[1].strip().strip('"')
    except OSError:
        return None
    return None


def machine(postgresql: str | None) -> dict[str, Any]:
    """What the figures depend on: CPU model, logical cores, memory, OS, Python and the PostgreSQL server's version."""
    cores = os.cpu_count()
    mem_kb = _first("/proc/meminfo", "MemTotal")
    memory_gib = round(int(mem_kb.split()[0]) / 2**20, 1) if mem_kb else None
    os_name = _first("/etc/os-release", "PRETTY_NAME=", "=") or platform.system()
    return {
        "summary": f"{cores}-core, {round(memory_gib) if memory_gib else '?'} GiB",
        "cpu": _first("/proc/cpuinfo", "model name") or platform.processor() or None,
        "cores": cores,
        "memory_gib": memory_gib,
        "os": f"{os_name}, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgresql": postgresql,
    }


def server_version() -> str:
    """The version of the PostgreSQL server the benchmarks use (the configured one, or the embedded one)."""
    import psycopg

    from pipeline.infra.database import libpq_url, warehouse_url
    from pipeline.infra.settings import Settings

    settings = Settings()
    with psycopg.connect(libpq_url(warehouse_url(settings))) as conn:
        version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    return version.split()[0] + (" (embedded)" if settings.database_url is None else "")


def commit() -> str | None:
    """The commit measured, with "+changes" when the working tree differs from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+changes" if changed else "")


# -- the history ---------------------------------------------------------------------------------------------------


def read_history(path: Path) -> list[Entry]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def append(path: Path, entry: Entry) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as history:
        history.write(json.dumps(entry, ensure_ascii=False) + "\n")


def documented_size(entry: Entry) -> bool:
    """Whether the entry's runs were at the documented sizes (imported records and Dagster timings were)."""
    return all(
        SIZES[name] == value or value in EARLIER_SIZES.get(name, ()) or value in SCALED_SIZES.get(name, ())
        for name, value in (entry.get("sizes") or {}).items()
    )


def latest(
    history: Iterable[Entry], key: str, field: str | None = None, users: int | None = None, before: str | None = None
) -> Entry | None:
    """The most recent entry at the documented sizes holding `key` (and `field` inside it); for the pipeline, of
    ``users`` users (default: the documented size, not the 10x run), made no later than ``before`` (a date)."""
    if key == "pipeline" and users is None:
        users = SIZES["users"]
    found = None
    for entry in history:
        holds = entry.get(key) and (field is None or entry[key].get(field) is not None)
        holds = holds and (users is None or entry[key].get("users") == users)
        holds = holds and (before is None or entry["date"] <= before)
        if holds and documented_size(entry) and (found is None or entry["date"] >= found["date"]):
            found = entry
    return found


def scaled_pipeline(history: list[Entry]) -> tuple[Entry, Entry] | None:
    """The latest 10x pipeline run and the documented-size run made last before it (on the same machine, so their
    ratios compare like with like): what the scaling targets are judged on."""
    for users in SCALED_SIZES["users"]:
        big = latest(history, "pipeline", "samples_per_s", users=users)
        if big is not None:
            small = latest(history, "pipeline", "samples_per_s", before=big["date"])
            if small is not None and small["machine"].get("cpu") == big["machine"].get("cpu"):
                return big, small
    return None


def scaled_ratios(big: Entry, small: Entry) -> tuple[float, float]:
    """The 10x run's pipeline time and peak memory over the documented run's."""
    b, s = big["pipeline"], small["pipeline"]
    return b["pipeline_s"] / s["pipeline_s"], b["peak_rss_mb"] / s["peak_rss_mb"]


def scaled_line(big: Entry, small: Entry) -> str:
    """Time and peak memory of the 10x run against the documented run's, and its late user-day."""
    b, s = big["pipeline"], small["pipeline"]
    time_ratio, peak_ratio = scaled_ratios(big, small)
    line = (
        f"{b['users']} users x {b['days']} days ({_n(b['samples'])} samples): {_n(b['samples_per_s'])} samples/s, "
        f"{_duration(b['pipeline_s'])} = {time_ratio:.1f}x the {s['users']} x {s['days']} run's "
        f"{_duration(s['pipeline_s'])} (at most {PIPELINE_SCALED_TIME_RATIO:.0f}x: "
        f"{_met(time_ratio <= PIPELINE_SCALED_TIME_RATIO)}); peak {_n(b['peak_rss_mb'])} MB = {peak_ratio:.2f}x its "
        f"{_n(s['peak_rss_mb'])} MB (at most {PIPELINE_SCALED_PEAK_RATIO}x: "
        f"{_met(peak_ratio <= PIPELINE_SCALED_PEAK_RATIO)})"
    )
    if b.get("late_user_day_s") is not None:
        late = b["late_user_day_s"]
        line += f"; a late user-day with every row present in {late:.2f} s (at most 2 s: {_met(late <= 2)})"
    if b.get("bytes_per_sample"):
        line += f"; the database holds {_n(b['bytes_per_sample'])} bytes per raw sample"
    return line


# -- rendering -----------------------------------------------------------------------------------------------------


def _wrap(text: str) -> str:
    """A paragraph or a bullet (continued two spaces in) wrapped at the project's line length."""
    indent = "  " if text.startswith("- ") else ""
    parts = text.split("`")  # code spans (odd parts) are kept on one line
    glued = "`".join(part.replace(" ", "\0") if i % 2 else part for i, part in enumerate(parts))
    glued = re.sub(r"(\d) (s|ms|min|MB|GiB|GB)\b", "\\1\0\\2", glued)  # a number stays with its unit
    glued = re.sub(r"\bmin (\d)", "min\\0\\1", glued)
    wrapped = textwrap.fill(glued, width=118, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)
    return wrapped.replace("\0", " ")


def _n(value: float | None, digits: int = 0, suffix: str = "") -> str:
    if value is None:
        return ""
    return f"{value:,.{digits}f}{suffix}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def _date(entry: Entry) -> str:
    return str(entry["date"])[:16].replace("T", " ")


def _load(entry: Entry) -> str:
    load = entry.get("load_average") or {}
    before, after = load.get("before"), load.get("after")
    if before is None and after is None:
        return ""
    if after is None:
        return f"{before:.1f}"
    return f"{before:.1f} -> {after:.1f}"


def _source(entry: Entry) -> str:
    ref = f" ({entry['commit']})" if entry.get("commit") else ""
    return f"{entry.get('origin', '')}{ref}"


def _met(condition: bool) -> str:
    return "met" if condition else "NOT met"


def import_line(entry: Entry) -> str:
    large, small = entry["import"]["large"], entry["import"].get("small") or {}
    alone = f" (import alone {_n(large['import_records_per_s'])}/s)" if large.get("import_records_per_s") else ""
    line = (
        f"a {_n(large['records'])}-record Apple Health export ({_n(large.get('file_mb'))} MB): "
        f"{_n(large['records_per_s'])} records/s{alone}, peak {_n(large['peak_rss_mb'])} MB"
    )
    if small.get("records_per_s"):
        line += (
            f"; {_n(small['records'])} records: {_n(small['records_per_s'])} records/s, "
            f"peak {_n(small['peak_rss_mb'])} MB"
        )
    return line


def pipeline_line(entry: Entry) -> str:
    """Throughput and floor; the pipeline process's peak and the late user-day's recompute where recorded."""
    p = entry["pipeline"]
    line = (
        f"{p['users']} users x {p['days']} days ({_n(p['samples'])} samples): {_n(p['samples_per_s'])} samples/s "
        f"({p['pipeline_s']:.1f} s), {p['floor_ratio']:.1f}x the floor ({p['floor_s']:.1f} s)"
    )
    if p.get("late_user_day_s") is not None:
        line += f", peak {_n(p['peak_rss_mb'])} MB, a late user-day recomputed in {p['late_user_day_s']:.2f} s"
    return line


def dagster_line(entry: Entry) -> str:
    return "; ".join(
        f"{path['how']}, {_n(path['user_days'])} user-days: {path['runs']} run{'s' if path['runs'] != 1 else ''}, "
        f"{_duration(path['seconds'])}"
        for path in entry["dagster"]
    )


FILLER_WORDS = {"nul": "NUL bytes", "a": "the letter a", "space": "spaces"}


def _padding(z: dict[str, Any]) -> str:
    """What a zip is padded with: records made before the filler was recorded were padded with NUL bytes."""
    return FILLER_WORDS.get(z.get("filler", "nul"), str(z.get("filler")))


def hostile_has_floor(entry: Entry) -> bool:
    """Whether the run measured its floors (records made before report raw times only)."""
    return any("floor_seconds" in b for b in entry["hostile"].get("bodies", {}).values())


def hostile_line(entry: Entry) -> str:
    """Each body's status, time (with its floor and marginal seconds per MB when measured) and peak server memory;
    each zip's outcome, time (against the import floor when measured) and peak."""
    h = entry["hostile"]
    parts = [
        f"{label.replace('_', ' ')} ({_n(b['body_mb'], 2)} MB): {b['status']} in {b['seconds']:.2f} s"
        + (
            f" (floor {b['floor_seconds']:.2f} s, marginal {b['marginal_seconds_per_mb']:.2f} s/MB)"
            if "floor_seconds" in b
            else ""
        )
        + f", peak {_n(b['peak_rss_mb'])} MB"
        for label, b in h.get("bodies", {}).items()
    ]
    if h.get("import_floor"):
        parts.append(f"import of a one-record export (the floor): {_duration(h['import_floor']['seconds'])}")
    parts += [
        f"zip of {_n(z['inner_mb'])} MB of {_padding(z)}: {z['outcome']}"
        + (f" (exit {z['exit_code']})" if z.get("exit_code") is not None else "")
        + f" after {_duration(z['seconds'])}"
        + (f" ({z['floor_ratio']:.1f}x the floor)" if "floor_ratio" in z else "")
        + f", peak {_n(z['peak_rss_mb'])} MB"
        for z in h.get("zips", {}).values()
    ]
    if not hostile_has_floor(entry):
        parts.append("raw times only (measured before the floor was)")
    return "; ".join(parts)


def _api_scenarios(entry: Entry) -> dict[str, dict[str, Any]]:
    return {r["scenario"]: r for r in entry["api"].get("scenarios", []) if "skipped" not in r}


def api_line(entry: Entry) -> str:
    """At the fixed rate each scenario's p50 / p99 (and the rate it reached), then the capacities."""
    a, by = entry["api"], _api_scenarios(entry)
    parts = [
        f"{name} p50 {_n(r['p50_ms'], 1)} ms, p99 {_n(r['p99_ms'], 1)} ms"
        + ("" if r["rps"] >= 0.98 * r["offered_rps"] else f" ({_n(r['rps'])}/s reached)")
        for name, r in by.items()
        if r["mode"] == "open" and r["p99_ms"] is not None
    ]
    line = f"{_n(a['users'])} users x {a['days']} days, at {_n(a['rate'])} requests/s: " + "; ".join(parts)
    bare, summary = by.get("bare capacity"), by.get("summary capacity")
    if bare and summary:
        line += f"; capacity: bare {_n(bare['rps'])}/s, summary {_n(summary['rps'])}/s"
    return line


def api_targets(entry: Entry) -> str:
    v = entry["api"].get("verdicts", {})
    parts = [
        f"{name} {_met(v[f'{name}_p99_ratio'] <= 1 and v[f'{name}_rate_reached'] >= 0.98)}"
        for name in ("summary", "aggregates")
        if f"{name}_p99_ratio" in v
    ]
    out = f"p99 < {API_P99_MS} ms at {API_RATE}/s: " + ", ".join(parts) if parts else ""
    if "summary_capacity_share" in v:
        out += (
            f"; summary capacity >= {API_CAPACITY_SHARE:g} of the bare route's ({v['summary_capacity_share']:.2f}): "
            f"{_met(v['summary_capacity_share'] >= API_CAPACITY_SHARE)}"
        )
    if "cached_p50_ratio" in v:
        out += f"; cached p50 < {API_CACHED_P50_MS} ms: {_met(v['cached_p50_ratio'] < 1)}"
    return out


def _machine_text(m: dict[str, Any]) -> str:
    details = [
        m.get("cpu"),
        m.get("os"),
        f"Python {m['python']}" if m.get("python") else None,
        f"PostgreSQL {m['postgresql']}" if m.get("postgresql") else None,
    ]
    known = [d for d in details if d]
    return f"{m['summary']}" + (f": {', '.join(known)}" if known else "")


def render_latest(history: list[Entry]) -> list[str]:
    lines = ["## Latest figures", ""]
    imp = latest(history, "import", "large")
    if imp:
        large = imp["import"]["large"]
        lines.append(
            f"- Import, `.venv/bin/python -m benchmarks.import_apple_export`: {import_line(imp)}. Targets >= "
            f"{IMPORT_RECORDS_PER_S:,} records/s: {_met(large['records_per_s'] >= IMPORT_RECORDS_PER_S)}; "
            f"< {IMPORT_PEAK_MB} MB: {_met(large['peak_rss_mb'] < IMPORT_PEAK_MB)}. "
            f"{_date(imp)} UTC, {imp['machine']['summary']}" + (f", load {_load(imp)}" if _load(imp) else "") + "."
        )
    pipe = latest(history, "pipeline", "samples_per_s")
    if pipe:
        p = pipe["pipeline"]
        lines.append(
            f"- Pipeline, `.venv/bin/python -m benchmarks.pipeline_end_to_end`: {pipeline_line(pipe)}. Targets >= "
            f"{PIPELINE_SAMPLES_PER_S:,} samples/s: {_met(p['samples_per_s'] >= PIPELINE_SAMPLES_PER_S)}; "
            f"<= {PIPELINE_FLOOR_RATIO:.0f}x the floor: {_met(p['floor_ratio'] <= PIPELINE_FLOOR_RATIO)}. "
            f"{_date(pipe)} UTC, {pipe['machine']['summary']}"
            + (f", load {_load(pipe)}" if _load(pipe) else "")
            + "."
            + (
                " Where the time went: " + ", ".join(f"{k} {v:.1f} s" for k, v in p["phases_s"].items()) + "."
                if p.get("phases_s")
                else ""
            )
        )
    scaled = scaled_pipeline(history)
    if scaled:
        big, size = scaled[0], scaled[0]["pipeline"]
        lines.append(
            f"- Pipeline at 10x, `.venv/bin/python -m benchmarks.pipeline_end_to_end --users {size['users']} "
            f"--days {size['days']}`: {scaled_line(*scaled)}. {_date(big)} UTC, {big['machine']['summary']}"
            + (f", load {_load(big)}" if _load(big) else "")
            + "."
        )
    hostile = latest(history, "hostile", "bodies")
    if hostile:
        verdicts = hostile["hostile"].get("verdicts", {})
        peaks = [b["peak_rss_mb"] for b in hostile["hostile"]["bodies"].values()]
        spread = verdicts.get("per_mb_spread")
        which = "marginal seconds per MB ((t - floor) / MB)" if hostile_has_floor(hostile) else "seconds per MB"
        growth = "".join(
            f"; {_padding({'filler': filler})} padding, {_n(g['sizes_mb'][1])} MB / {_n(g['sizes_mb'][0])} MB zip: "
            f"marginal seconds per MB x{g['per_mb_growth']:.2f}, peak x{g['peak_growth']:.2f} (at most "
            f"{HOSTILE_PER_MB_SPREAD}x: {_met(max(g['per_mb_growth'], g['peak_growth']) <= HOSTILE_PER_MB_SPREAD)})"
            for filler, g in verdicts.get("zip_growth", {}).items()
        )
        lines.append(
            f"- Hostile input, `.venv/bin/python -m benchmarks.hostile_input`: {hostile_line(hostile)}. Targets: peak "
            f"server memory < {HOSTILE_PEAK_MB} MB for every body: {_met(max(peaks) < HOSTILE_PEAK_MB)}"
            + (
                f"; {which} within {HOSTILE_PER_MB_SPREAD}x across valid bodies ({spread:.2f}x): "
                f"{_met(spread <= HOSTILE_PER_MB_SPREAD)}"
                if spread is not None
                else ""
            )
            + growth
            + f". {_date(hostile)} UTC, {hostile['machine']['summary']}"
            + (f", load {_load(hostile)}" if _load(hostile) else "")
            + "."
        )
    api = latest(history, "api", "scenarios")
    if api:
        lines.append(
            f"- Read API, `.venv/bin/python -m benchmarks.api_read`: {api_line(api)}. Targets: {api_targets(api)}. "
            f"{_date(api)} UTC, {api['machine']['summary']}" + (f", load {_load(api)}" if _load(api) else "") + "."
        )
    dag = latest(history, "dagster")
    if dag:
        lines.append(
            f"- Through Dagster (measured by hand, see the method): {dagster_line(dag)}. "
            f"{_date(dag)} UTC, {dag['machine']['summary']}."
        )
    return [*map(_wrap, lines), ""]


def render_tables(history: list[Entry]) -> list[str]:
    ordered = sorted(history, key=lambda e: e["date"])
    lines = ["## Recorded runs", "", "Oldest first; times in UTC. Machines:", ""]
    machines = dict.fromkeys(_machine_text(e["machine"]) for e in ordered)
    lines += [f"- {text}" for text in machines]

    lines += [
        "",
        "### Import",
        "",
        "| date | machine | export | records/s | import alone | peak MB | peak large/small | load | source |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for e in ordered:
        if not e.get("import"):
            continue
        for label in ("small", "large"):
            size = e["import"].get(label)
            if not size:
                continue
            export = f"{_n(size['records'])} records" + (f" ({_n(size['file_mb'])} MB)" if size.get("file_mb") else "")
            load = (
                f"{size['load_before']:.1f} -> {size['load_after']:.1f}"
                if size.get("load_before") is not None
                else _load(e)
            )
            ratio = _n(e["import"].get("peak_ratio"), 2) if label == "large" else ""
            lines.append(
                f"| {_date(e)} | {e['machine']['summary']} | {export} | {_n(size['records_per_s'])} "
                f"| {_n(size.get('import_records_per_s'))} | {_n(size['peak_rss_mb'])} | {ratio} | {load} "
                f"| {_source(e)} |"
            )

    lines += [
        "",
        "### Pipeline",
        "",
        "| date | machine | user-days | samples | floor | six-column floor | pipeline | samples/s | x floor "
        "| x six-column | peak MB | late user-day | load | source |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in ordered:
        p = e.get("pipeline")
        if not p:
            continue
        lines.append(
            f"| {_date(e)} | {e['machine']['summary']} | {_n(p.get('user_days'))} | {_n(p.get('samples'))} "
            f"| {_n(p.get('floor_s'), 1, ' s')} | {_n(p.get('floor_six_s'), 1, ' s')} "
            f"| {_n(p.get('pipeline_s'), 1, ' s')} | {_n(p.get('samples_per_s'))} | {_n(p.get('floor_ratio'), 1, 'x')} "
            f"| {_n(p.get('floor_six_ratio'), 1, 'x')} | {_n(p.get('peak_rss_mb'))} "
            f"| {_n(p.get('late_user_day_s'), 2, ' s')} | {_load(e)} | {_source(e)} |"
        )

    lines += [
        "",
        "### Through Dagster",
        "",
        "| date | machine | how | user-days | runs | first run created -> last run done | source |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in ordered:
        for path in e.get("dagster") or ():
            lines.append(
                f"| {_date(e)} | {e['machine']['summary']} | {path['how']} | {_n(path.get('user_days'))} "
                f"| {path['runs']} | {_duration(path['seconds'])}"
                + (f" ({path['note']})" if path.get("note") else "")
                + f" | {_source(e)} |"
            )

    lines += [
        "",
        "### Hostile input",
        "",
        _wrap(
            "Floor: a one-sample sync on the same warmed server for a body, the import of a one-record export for a "
            'zip; marginal: (seconds - floor) / MB for a body, seconds / floor for a zip. Runs marked "no floor" '
            "were measured before the floor was."
        ),
        "",
        "| date | machine | input | answer | seconds | s/MB | floor s | marginal | peak MB | load | source |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in ordered:
        h = e.get("hostile")
        if not h:
            continue
        for label, b in h.get("bodies", {}).items():
            floor, marginal = (
                (_n(b["floor_seconds"], 3), f"{_n(b['marginal_seconds_per_mb'], 2)} s/MB")
                if "floor_seconds" in b
                else ("no floor", "")
            )
            lines.append(
                f"| {_date(e)} | {e['machine']['summary']} | {label.replace('_', ' ')} body, {_n(b['body_mb'], 2)} MB "
                f"| {b['status']} | {_n(b['seconds'], 2)} | {_n(b['seconds_per_mb'], 2)} | {floor} | {marginal} "
                f"| {_n(b['peak_rss_mb'])} | {_load(e)} | {_source(e)} |"
            )
        import_floor = h.get("import_floor")
        for z in h.get("zips", {}).values():
            answer = z["outcome"] + (f", exit {z['exit_code']}" if z.get("exit_code") is not None else "")
            floor, marginal = (
                (_n(import_floor["seconds"], 1), f"{_n(z['floor_ratio'], 2)}x floor")
                if import_floor and "floor_ratio" in z
                else ("no floor", "")
            )
            lines.append(
                f"| {_date(e)} | {e['machine']['summary']} | zip, {_n(z['inner_mb'])} MB of {_padding(z)} inside "
                f"({_n(z['zip_kb'])} KB) | {answer} | {_n(z['seconds'], 1)} | | {floor} | {marginal} "
                f"| {_n(z['peak_rss_mb'])} | {_load(e)} | {_source(e)} |"
            )

    lines += [
        "",
        "### Read API",
        "",
        _wrap(
            "Open: a fixed rate of requests, latency from each request's write; closed: back to back on every "
            "connection (capacity). Failed: answers other than 200/304, and requests not answered by 2 s after the "
            "last was due. Client and server: CPU microseconds per request of the load generator and of the API."
        ),
        "",
        "| date | machine | data | scenario | offered/s | achieved/s | p50 ms | p99 ms | failed | client us "
        "| server us | load | source |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in ordered:
        a = e.get("api")
        if not a:
            continue
        for r in a.get("scenarios", []):
            if "skipped" in r:
                continue
            failed = sum(v for k, v in r["statuses"].items() if k not in ("200", "304")) + r.get("not_answered", 0)
            lines.append(
                f"| {_date(e)} | {e['machine']['summary']} | {_n(a['users'])} x {a['days']} | {r['scenario']} "
                f"| {_n(r['offered_rps'])} | {_n(r['rps'])} | {_n(r['p50_ms'], 2)} | {_n(r['p99_ms'], 2)} | {failed} "
                f"| {_n(r['client_cpu_us'])} | {_n(r['server_cpu_us'])} | {_load(e)} | {_source(e)} |"
            )

    notes = [e for e in ordered if e.get("note")]
    if notes:
        lines += ["", "### Notes", ""]
        lines += [_wrap(f"- {_date(e)}: {e['note']}") for e in notes]
    return [*lines, ""]


def render(history: list[Entry], method: str) -> str:
    lines = [
        "# Benchmarks",
        "",
        "<!-- Generated by `.venv/bin/python -m benchmarks.report` from docs/benchmarks/history.jsonl and "
        "benchmarks/method.md: edit those, not this page. -->",
        "",
        _wrap(
            "How fast healthpipe imports and recomputes, what hostile input costs it, how fast its read API answers, "
            "on which machine, and how it is measured. One command runs every benchmark at the documented sizes, "
            "appends the run (machine, date, load average, every figure) to "
            "[`docs/benchmarks/history.jsonl`](benchmarks/history.jsonl) and rewrites this page and the README's "
            "figures:"
        ),
        "",
        "```bash",
        COMMAND,
        "```",
        "",
        *render_latest(history),
        method.strip(),
        "",
        *render_tables(history),
    ]
    return "\n".join(lines)


def render_readme_block(history: list[Entry]) -> str:
    """The README's Performance figures: one line each, with the command that produced it."""
    lines = []
    imp = latest(history, "import", "large")
    if imp:
        large, small = imp["import"]["large"], imp["import"].get("small")
        beside = f" ({_n(small['records'])}: {_n(small['records_per_s'])}/s, {_n(small['peak_rss_mb'])} MB)"
        lines.append(
            f"- Import of a {_n(large['records'])}-record Apple export: {_n(large['records_per_s'])} records/s, peak "
            f"{_n(large['peak_rss_mb'])} MB{beside if small else ''}: "
            "`.venv/bin/python -m benchmarks.import_apple_export`"
        )
    pipe = latest(history, "pipeline", "samples_per_s")
    if pipe:
        p = pipe["pipeline"]
        lines.append(
            f"- Pipeline, {p['users']} users x {p['days']} days ({_n(p['samples'])} samples): {_n(p['samples_per_s'])} "
            f"samples/s, {p['floor_ratio']:.1f}x the floor: `.venv/bin/python -m benchmarks.pipeline_end_to_end`"
        )
    scaled = scaled_pipeline(history)
    if scaled:
        big = scaled[0]["pipeline"]
        time_ratio, peak_ratio = scaled_ratios(*scaled)
        lines.append(
            f"- The same at 10x, {big['users']} users x {big['days']} days ({_n(big['samples'])} samples): "
            f"{time_ratio:.1f}x the time, {peak_ratio:.2f}x the peak memory ({_n(big['peak_rss_mb'])} MB), "
            f"a late user-day in {big['late_user_day_s']:.2f} s: "
            f"`.venv/bin/python -m benchmarks.pipeline_end_to_end --users {big['users']} --days {big['days']}`"
        )
    api = latest(history, "api", "scenarios")
    if api:
        by, v = _api_scenarios(api), api["api"].get("verdicts", {})
        figures = [
            f"{name} p99 {_n(by[name]['p99_ms'], 1)} ms"
            + ("" if by[name]["rps"] >= 0.98 * by[name]["offered_rps"] else f" ({_n(by[name]['rps'])}/s reached)")
            for name in ("summary", "aggregates")
            if name in by
        ]
        if "cached" in by:
            figures.append(f"cached p50 {_n(by['cached']['p50_ms'], 1)} ms")
        share = v.get("summary_capacity_share")
        lines.append(
            f"- Read API, {_n(api['api']['users'])} users x a year, {_n(api['api']['rate'])} requests/s: "
            + ", ".join(figures)
            + (f"; summary capacity {share:.2f}x the bare route's" if share is not None else "")
            + ": `.venv/bin/python -m benchmarks.api_read`"
        )
    dag = latest(history, "dagster")
    if dag:
        paths = ", ".join(
            f"{path['how']} {path['runs']} run{'s' if path['runs'] != 1 else ''} in {_duration(path['seconds'])}"
            for path in dag["dagster"]
        )
        lines.append(f"- Dagster, `healthpipe generate --users 50 --days 60` under `healthpipe up`: {paths}")
    shown = [e for e in (imp, pipe, api, dag) if e]
    if not shown:
        return ""
    dates = sorted({_date(e)[:10] for e in shown})
    machines = sorted({e["machine"]["summary"] for e in shown})
    footer = (
        f"{' / '.join(machines)}, {', '.join(dates)}. `{COMMAND}` reruns the benchmarks and rewrites these lines; "
        "method and every run: [docs/benchmarks.md](docs/benchmarks.md)."
    )
    return "\n".join([*map(_wrap, lines), "", _wrap(footer)])


def replace_block(text: str, name: str, content: str) -> str:
    """`text` with what lies between <!-- name --> and <!-- /name --> replaced by `content`."""
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    if start not in text or end not in text:
        raise ValueError(f"README.md has no {start} ... {end} block")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{content}\n{end}{tail}"


def write_outputs(history: list[Entry], output: Path, readme: Path | None) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(history, METHOD.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {output}")
    if readme is not None:
        readme.write_text(
            replace_block(readme.read_text(encoding="utf-8"), "performance", render_readme_block(history)),
            encoding="utf-8",
        )
        print(f"updated the figures in {readme}")


# -- running -------------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> Entry:
    from benchmarks import api_read, hostile_input, import_apple_export, pipeline_end_to_end

    entry: Entry = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "origin": "benchmarks.report",
        "commit": commit(),
        "machine": machine(server_version()),
        "load_average": {"before": round(os.getloadavg()[0], 2)},
        "sizes": {},
    }
    if args.only in (None, "import"):
        entry["sizes"] |= {"records": args.records, "small": args.small}
        print(f"== import: {args.small:,} and {args.records:,} records", flush=True)
        entry["import"] = import_apple_export.main(["--records", str(args.records), "--small", str(args.small)])
    if args.only in (None, "pipeline"):
        entry["sizes"] |= {"users": args.users, "days": args.days}
        print(f"== pipeline: {args.users} users x {args.days} days", flush=True)
        entry["pipeline"] = pipeline_end_to_end.main(["--users", str(args.users), "--days", str(args.days)])
    if args.only in (None, "hostile"):
        entry["sizes"] |= {"body_mb": args.body_mb, "zip_mb": args.zip_mb}
        print(f"== hostile input: bodies of {args.body_mb} MB, padded zips of {args.zip_mb} MB", flush=True)
        entry["hostile"] = hostile_input.main(["--body-mb", args.body_mb, "--zip-mb", args.zip_mb])
    if args.only in (None, "api"):
        entry["sizes"] |= {"api_users": args.api_users, "api_days": args.api_days, "api_seconds": args.api_seconds}
        print(f"== read API: {args.api_users:,} users x {args.api_days} days, {args.api_seconds:g} s a scenario")
        entry["api"] = api_read.main(
            ["--users", str(args.api_users), "--days", str(args.api_days), "--seconds", str(args.api_seconds)]
        )
    entry["load_average"]["after"] = round(os.getloadavg()[0], 2)
    if args.note:
        entry["note"] = args.note
    return entry


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=SIZES["records"], help="records of the large export")
    parser.add_argument("--small", type=int, default=SIZES["small"], help="records of the small export")
    parser.add_argument("--users", type=int, default=SIZES["users"], help="users of the pipeline benchmark")
    parser.add_argument("--days", type=int, default=SIZES["days"], help="days of the pipeline benchmark")
    parser.add_argument("--body-mb", default=SIZES["body_mb"], help="valid body sizes of the hostile input benchmark")
    parser.add_argument("--zip-mb", default=SIZES["zip_mb"], help="padding in its zips, in MB ('' for none)")
    parser.add_argument("--api-users", type=int, default=SIZES["api_users"], help="users of the read API benchmark")
    parser.add_argument("--api-days", type=int, default=SIZES["api_days"], help="days of the read API benchmark")
    parser.add_argument("--api-seconds", type=float, default=SIZES["api_seconds"], help="seconds per read API scenario")
    parser.add_argument("--only", choices=("import", "pipeline", "hostile", "api"), help="run one benchmark")
    parser.add_argument("--note", help="a remark recorded with the run (e.g. what else the machine was doing)")
    parser.add_argument("--render-only", action="store_true", help="render from the history; run nothing")
    parser.add_argument("--history", type=Path, help=f"the history file (default {HISTORY.relative_to(ROOT)})")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="the page to render")
    parser.add_argument(
        "--readme", default=str(README), help="README whose performance block to update ('' to leave it)"
    )
    args = parser.parse_args(argv)
    history_path = args.history or HISTORY
    readme = Path(args.readme) if args.readme else None
    if not args.render_only:
        entry = run(args)
        if not documented_size(entry) and args.history is None:
            print("\nnot recorded: smaller than the documented sizes (pass --history FILE to record it there)")
            print(json.dumps(entry, indent=2))
            return
        append(history_path, entry)
        print(f"\nrecorded in {history_path}")
    write_outputs(read_history(history_path), args.output, readme)


if __name__ == "__main__":
    main()
