"""Apple Health import: records per second and peak resident memory, at two file sizes.

    .venv/bin/python -m benchmarks.import_apple_export [--records 2000000] [--small 500000]

`benchmarks.report` runs it and records what `main` returns in docs/benchmarks/history.jsonl.

The export is synthetic (one person's years of watch, phone and scale data) and written before timing starts.
Each import runs in a fresh child process (`healthpipe import`), whose peak RSS is read from the kernel after it
exits; records/s counts the whole process (start-up ~1 s included), the report line below it the import alone. The
machine's 1-minute load average is printed around each import: other work on the two cores slows it down.
Targets: at least 100,000 records/s, under 300 MB resident, independent of file size.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import scratch_database
from pipeline.synthetic.apple_export import write_export
from pipeline.synthetic.generator import SyntheticConfig, generate


def make_export(path: Path, records: int) -> int:
    days = max(1, round(records / 1300)) + 1
    dataset = generate(SyntheticConfig(users=1, days=days, seed=11, malformed_rate=0.0, implausible_rate=0.0))
    return write_export(path, dataset.samples.iloc[:records])


# The child reports VmHWM, its own peak resident set. (getrusage's ru_maxrss would not do: Linux carries it across
# exec, so a child would inherit the benchmark's own high-water mark from generating the data.)
_MEASURED_CHILD = (
    "import sys\n"
    "from pipeline.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
    "print('peak_rss_kb', hwm, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def timed_import(url: str, path: Path, user: str) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, first report line) of one `healthpipe import` in a fresh child process, which
    reports its own peak resident set size as it exits."""
    env = os.environ | {"HEALTHPIPE_DATABASE_URL": url}
    subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "users", "add", user], env=env, check=True, capture_output=True
    )
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", _MEASURED_CHILD, "import", str(path), "--user", user],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - started
    peak_kb = int(result.stderr.rsplit("peak_rss_kb", 1)[1].split()[0])
    return seconds, peak_kb / 1024, result.stdout.strip().splitlines()[0]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print its results and return them: per size (small, large) the records, file size, seconds,
    records/s of the whole process and of the import alone, peak RSS and the load average around the import."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=2_000_000)
    parser.add_argument("--small", type=int, default=500_000)
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, scratch_database() as url:
        rendered = url.render_as_string(hide_password=False)
        for label, records in (("small", args.small), ("large", args.records)):
            path = Path(tmp) / f"export_{label}.xml"
            written = make_export(path, records)
            load_before = os.getloadavg()[0]
            seconds, peak_mb, line = timed_import(rendered, path, f"bench_{label}")
            load_after = os.getloadavg()[0]
            size_mb = path.stat().st_size / 1e6
            reported = re.search(r"\(([\d,]+)/s\)", line)
            figures[label] = {
                "records": written,
                "file_mb": round(size_mb, 1),
                "seconds": round(seconds, 2),
                "records_per_s": round(written / seconds),
                "import_records_per_s": int(reported.group(1).replace(",", "")) if reported else None,
                "peak_rss_mb": round(peak_mb, 1),
                "load_before": round(load_before, 2),
                "load_after": round(load_after, 2),
            }
            print(
                f"{label}: {written:,} records, {size_mb:,.0f} MB: {seconds:.1f} s, "
                f"{written / seconds:,.0f} records/s, peak RSS {peak_mb:,.0f} MB "
                f"(load average {load_before:.1f} before, {load_after:.1f} after)\n  {line}",
                flush=True,
            )
            path.unlink()
        small, large = figures["small"], figures["large"]
        figures["peak_ratio"] = round(large["peak_rss_mb"] / small["peak_rss_mb"], 3)
        print(
            f"\nrecords/s (large) {large['records_per_s']:,}  target >= 100,000: "
            f"{'met' if large['records_per_s'] >= 100_000 else 'NOT met'}"
        )
        print(
            f"peak RSS {large['peak_rss_mb']:,.0f} MB  target < 300 MB: "
            f"{'met' if large['peak_rss_mb'] < 300 else 'NOT met'}"
        )
        growth = large["records"] / small["records"]
        print(f"peak RSS large/small {figures['peak_ratio']:.2f} for {growth:.1f}x the records")
    return figures


if __name__ == "__main__":
    main()
